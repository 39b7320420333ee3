"""Graph-guided modules: SimilarityGCNConv, any PyG conv as a guide, the GGM / fc / none guides."""

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
)
from gasgnn.ggm.diagnostics import (
    attention_entropy,
    guide_diagnostics,
)
from gasgnn.ggm.errors import (
    GuideError,
)
from gasgnn.ggm.guides import (
    CELL_BUILDER,
    GUIDES,
    FCGuide,
    GraphGuidedModule,
    Guide,
    NoGuide,
    build_guide,
    register_guide,
    slot_attributes,
)
from gasgnn.ggm.sim_conv import (
    SimilarityGCNConv,
)

__all__ = [
    "attention_entropy",
    "guide_diagnostics",
    "GuideError",
    "SimilarityGCNConv",
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
