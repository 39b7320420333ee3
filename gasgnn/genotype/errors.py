"""The genotype package's error type (its own module, so the conversions need not import the Genotype class)."""

__all__ = ["GenotypeError"]


class GenotypeError(ValueError):
    """A malformed genotype; the message names the offending field (e.g. ``cells[3].edges[1].op``)."""
