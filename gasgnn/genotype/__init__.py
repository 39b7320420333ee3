"""Derived architectures: Genotype and its conversions, DARTS notation, derivation, reference genotypes."""

from gasgnn.genotype.darts import (
    DARTS_CELLS,
    darts_space,
    genotype_from_darts,
    parse_darts,
)
from gasgnn.genotype.data import (
    batch_vocabulary,
    genotype_from_data,
    genotype_to_data,
    op_vocabulary,
)
from gasgnn.genotype.derive import (
    allowed_columns,
    derive,
    edge_strengths,
    op_entropy,
)
from gasgnn.genotype.errors import (
    GenotypeError,
)
from gasgnn.genotype.genotype import (
    GENOTYPE_FORMAT,
    GENOTYPE_VERSION,
    CellGenotype,
    Genotype,
    random_genotype,
)
from gasgnn.genotype.references import (
    REFERENCE_NETS,
    ReferenceNet,
    available_references,
    get_reference,
    hand_light,
    hand_sep,
    reference_genotype,
    register_reference,
    resolve_genotype,
    skip_only,
)

__all__ = [
    "GenotypeError",
    "op_vocabulary",
    "genotype_to_data",
    "genotype_from_data",
    "batch_vocabulary",
    "DARTS_CELLS",
    "genotype_from_darts",
    "darts_space",
    "parse_darts",
    "GENOTYPE_FORMAT",
    "GENOTYPE_VERSION",
    "CellGenotype",
    "Genotype",
    "random_genotype",
    "allowed_columns",
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
