"""Networks: the supernet, the derived GASNet, segmentation heads, model specs and loading."""

from gasgnn.models.batched import (
    BatchedSearchCell,
    NodeEdges,
    NodeOps,
    OpSlot,
    PerEdge,
)
from gasgnn.models.blocks import (
    MemoryOptions,
    cell_preprocess,
    channel_shuffle,
    keep_bn_stats,
    strip_leading_relu,
)
from gasgnn.models.heads import (
    HEADS,
    ASPPHead,
    PPMHead,
    SimpleHead,
    build_head,
    register_head,
)
from gasgnn.models.loading import (
    build_model,
    build_reference,
    gasnet_spec,
    load_checkpoint,
    load_model,
    load_weights,
)
from gasgnn.models.memory import (
    MemoryEstimate,
    check_memory,
    estimate_memory,
    free_memory,
    human_bytes,
)
from gasgnn.models.net import (
    DerivedCell,
    GASNet,
)
from gasgnn.models.supernet import (
    MixedOp,
    SearchCell,
    Supernet,
    load_per_edge,
)

__all__ = [
    "MemoryOptions",
    "cell_preprocess",
    "channel_shuffle",
    "keep_bn_stats",
    "strip_leading_relu",
    "HEADS",
    "register_head",
    "build_head",
    "SimpleHead",
    "ASPPHead",
    "PPMHead",
    "PerEdge",
    "NodeOps",
    "OpSlot",
    "NodeEdges",
    "BatchedSearchCell",
    "MixedOp",
    "SearchCell",
    "Supernet",
    "load_per_edge",
    "DerivedCell",
    "GASNet",
    "build_model",
    "build_reference",
    "gasnet_spec",
    "load_checkpoint",
    "load_model",
    "load_weights",
    "MemoryEstimate",
    "check_memory",
    "estimate_memory",
    "free_memory",
    "human_bytes",
]
