"""Graph-guided modules: SimilarityGCNConv, any PyG conv as a guide, the GGM / fc / none guides."""

from gasgnn.ggm.base import (
    Guide,
    guide_regularizer,
)
from gasgnn.ggm.builder import (
    _MLP_PARAMS,
    GUIDE_OPTIONS,
    MAX_INIT_RATIO,
    PyGGuideConv,
    build_pyg_conv,
    check_guide_scale,
)
from gasgnn.ggm.convs import (
    CONVS,
    build_conv,
    conv_name,
    conv_output,
    import_object,
    is_conv_class,
    resolve_conv_class,
    uses_similarity,
)
from gasgnn.ggm.diagnostics import (
    DIAGNOSTICS,
    attention_diagnostics,
    attention_entropy,
    distinct_sources,
    guide_diagnostics,
    update_ratio,
)
from gasgnn.ggm.errors import (
    GuideError,
)
from gasgnn.ggm.graph_guide import (
    CELL_BUILDER,
    SIM_INPUTS,
    GraphGuidedModule,
    balance_penalty,
    slot_attributes,
)
from gasgnn.ggm.guides import (
    DEFAULT_GUIDE,
    GUIDES,
    FCGuide,
    NoGuide,
    build_guide,
    guide_names,
    register_guide,
)
from gasgnn.ggm.sim_conv import (
    SimilarityGCNConv,
)
from gasgnn.ggm.slot_conv import (
    SlotSimilarityConv,
    sinkhorn,
)

__all__ = [
    "GuideError",
    "SimilarityGCNConv",
    "SlotSimilarityConv",
    "sinkhorn",
    "uses_similarity",
    "DIAGNOSTICS",
    "attention_diagnostics",
    "attention_entropy",
    "distinct_sources",
    "guide_diagnostics",
    "update_ratio",
    "DEFAULT_GUIDE",
    "SIM_INPUTS",
    "balance_penalty",
    "guide_names",
    "guide_regularizer",
    "_MLP_PARAMS",
    "GUIDE_OPTIONS",
    "PyGGuideConv",
    "build_pyg_conv",
    "MAX_INIT_RATIO",
    "check_guide_scale",
    "CONVS",
    "import_object",
    "conv_name",
    "resolve_conv_class",
    "is_conv_class",
    "build_conv",
    "conv_output",
    "CELL_BUILDER",
    "FCGuide",
    "GUIDES",
    "Guide",
    "GraphGuidedModule",
    "NoGuide",
    "build_guide",
    "register_guide",
    "slot_attributes",
]
