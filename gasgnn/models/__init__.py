"""Networks: supernet, derived GASNet, heads, model specs and loading, pretrained directories (save/from_pretrained)."""

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
from gasgnn.models.card import (
    CARD_FIELDS,
    NOT_MEASURED,
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
    save_pretrained_from_checkpoint,
)
from gasgnn.models.memory import (
    MemoryEstimate,
    check_memory,
    estimate_memory,
    free_memory,
    human_bytes,
    spec_memory_check,
)
from gasgnn.models.net import (
    DerivedCell,
    GASNet,
)
from gasgnn.models.pretrained import (
    PRETRAINED_FILES,
    PRETRAINED_FORMAT,
    PRETRAINED_VERSION,
    GenotypeDrawer,
    PretrainedMixin,
    read_pretrained_config,
    resolve_pretrained,
    save_pretrained,
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
    "spec_memory_check",
    "save_pretrained_from_checkpoint",
    "CARD_FIELDS",
    "NOT_MEASURED",
    "PRETRAINED_FILES",
    "PRETRAINED_FORMAT",
    "PRETRAINED_VERSION",
    "GenotypeDrawer",
    "PretrainedMixin",
    "read_pretrained_config",
    "resolve_pretrained",
    "save_pretrained",
]
