"""gasgnn: graph-guided architecture search for real-time semantic segmentation (GAS) on PyG."""

from gasgnn.derive import derive
from gasgnn.ggm import (
    GUIDES,
    FCGuide,
    GraphGuidedModule,
    NoGuide,
    SimilarityGCNConv,
    build_guide,
    register_guide,
)
from gasgnn.graph import BUILDERS, CellGenotype, Genotype, GenotypeError, random_genotype, register_builder
from gasgnn.heads import HEADS, build_head, register_head
from gasgnn.net import GASNet
from gasgnn.ops import GAS_OPS, OPS, build_op, get_op, register_op
from gasgnn.space import SearchSpace, SpaceError
from gasgnn.supernet import MemoryOptions, MixedOp, SearchCell, Supernet

__version__ = "0.1.0"

__all__ = [
    "FCGuide",
    "GUIDES",
    "GraphGuidedModule",
    "NoGuide",
    "SimilarityGCNConv",
    "build_guide",
    "register_guide",
    "BUILDERS",
    "CellGenotype",
    "GASNet",
    "GAS_OPS",
    "Genotype",
    "GenotypeError",
    "HEADS",
    "MemoryOptions",
    "MixedOp",
    "OPS",
    "SearchCell",
    "SearchSpace",
    "SpaceError",
    "Supernet",
    "build_head",
    "build_op",
    "derive",
    "get_op",
    "random_genotype",
    "register_builder",
    "register_head",
    "register_op",
]
