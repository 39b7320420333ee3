"""gasgnn: graph-guided architecture search for real-time semantic segmentation (GAS) on PyG.

The public API. Each concept is a subpackage with its own ``__init__`` as its public surface:
:mod:`gasgnn.space`, :mod:`gasgnn.genotype`, :mod:`gasgnn.models`, :mod:`gasgnn.kernels`, :mod:`gasgnn.ggm`,
:mod:`gasgnn.latency`, :mod:`gasgnn.search`, :mod:`gasgnn.train`, :mod:`gasgnn.data`, :mod:`gasgnn.viz`,
:mod:`gasgnn.distributed` (see ``docs/architecture.md``).
"""

from gasgnn.genotype import CellGenotype, Genotype, GenotypeError, derive, random_genotype
from gasgnn.ggm import (
    GUIDES,
    FCGuide,
    GraphGuidedModule,
    NoGuide,
    SimilarityGCNConv,
    build_guide,
    register_guide,
)
from gasgnn.models import HEADS, GASNet, MemoryOptions, MixedOp, SearchCell, Supernet, build_head, register_head
from gasgnn.registry import Registry, RegistryError
from gasgnn.space import (
    BUILDERS,
    GAS_OPS,
    OPS,
    SearchSpace,
    SpaceError,
    build_op,
    get_op,
    register_builder,
    register_op,
)

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
    "Registry",
    "RegistryError",
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
