"""The search space: the op registry and op modules, SearchSpace and its ArchGraph, relation builders."""

from gasgnn.space.ops import (
    OpSpec,
    OPS,
    register_op,
    get_op,
    build_op,
    ReLUConvBN,
    DilConv,
    SepConv,
    Zero,
    FactorizedReduce,
    Stem,
    GAS_OPS,
)
from gasgnn.space.builders import (
    BUILDERS,
    SpaceShape,
    register_builder,
    build_edge_index,
    adjacent,
    aligned,
    all_previous,
)
from gasgnn.space.space import (
    SpaceError,
    SearchSpace,
)

__all__ = [
    "OpSpec",
    "OPS",
    "register_op",
    "get_op",
    "build_op",
    "ReLUConvBN",
    "DilConv",
    "SepConv",
    "Zero",
    "FactorizedReduce",
    "Stem",
    "GAS_OPS",
    "BUILDERS",
    "SpaceShape",
    "register_builder",
    "build_edge_index",
    "adjacent",
    "aligned",
    "all_previous",
    "SpaceError",
    "SearchSpace",
]
