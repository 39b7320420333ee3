"""The ggm package's error type (its own module: the conv builder and the guides both raise it)."""

__all__ = ["GuideError"]


class GuideError(ValueError):
    """A guidance module or conv that cannot be built or used; the message names the spec or field."""
