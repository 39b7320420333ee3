"""Derived architectures: Genotype and its conversions, DARTS notation, derivation, reference genotypes."""

from gasgnn.genotype.genotype import (
    GENOTYPE_FORMAT,
    GENOTYPE_VERSION,
    CellGenotype,
    Genotype,
    GenotypeError,
    parse_darts,
    random_genotype,
)
from gasgnn.genotype.derive import (
    edge_strengths,
    op_entropy,
    derive,
)
from gasgnn.genotype.references import (
    ReferenceNet,
    REFERENCE_NETS,
    register_reference,
    available_references,
    get_reference,
    reference_genotype,
    resolve_genotype,
    hand_sep,
    hand_light,
    skip_only,
)

__all__ = [
    "GENOTYPE_FORMAT",
    "GENOTYPE_VERSION",
    "CellGenotype",
    "Genotype",
    "GenotypeError",
    "parse_darts",
    "random_genotype",
    "edge_strengths",
    "op_entropy",
    "derive",
    "ReferenceNet",
    "REFERENCE_NETS",
    "register_reference",
    "available_references",
    "get_reference",
    "reference_genotype",
    "resolve_genotype",
    "hand_sep",
    "hand_light",
    "skip_only",
]
