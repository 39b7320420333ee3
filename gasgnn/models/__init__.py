"""Networks: the supernet, the derived GASNet, segmentation heads, model specs and loading."""

from gasgnn.models.blocks import (
    cell_preprocess,
)
from gasgnn.models.heads import (
    HEADS,
    register_head,
    build_head,
    SimpleHead,
    ASPPHead,
    PPMHead,
)
from gasgnn.models.supernet import (
    MemoryOptions,
    channel_shuffle,
    MixedOp,
    SearchCell,
    Supernet,
)
from gasgnn.models.net import (
    DerivedCell,
    GASNet,
)
from gasgnn.models.loading import (
    build_model,
    build_reference,
    gasnet_spec,
    load_checkpoint,
    load_model,
    load_weights,
)

__all__ = [
    "cell_preprocess",
    "HEADS",
    "register_head",
    "build_head",
    "SimpleHead",
    "ASPPHead",
    "PPMHead",
    "MemoryOptions",
    "channel_shuffle",
    "MixedOp",
    "SearchCell",
    "Supernet",
    "DerivedCell",
    "GASNet",
    "build_model",
    "build_reference",
    "gasnet_spec",
    "load_checkpoint",
    "load_model",
    "load_weights",
]
