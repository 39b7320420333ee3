"""Graph-guided modules: SimilarityGCNConv, any PyG conv as a guide, the GGM / fc / none guides."""

from gasgnn.ggm.errors import (
    GuideError,
)
from gasgnn.ggm.builder import (
    _MLP_PARAMS,
    GUIDE_OPTIONS,
    PyGGuideConv,
    build_pyg_conv,
    MAX_INIT_RATIO,
    check_guide_scale,
)
from gasgnn.ggm.convs import (
    SimilarityGCNConv,
    CONVS,
    import_object,
    conv_name,
    resolve_conv_class,
    is_conv_class,
    build_conv,
    conv_output,
)
from gasgnn.ggm.guides import (
    CELL_BUILDER,
    FCGuide,
    GUIDES,
    Guide,
    GraphGuidedModule,
    NoGuide,
    build_guide,
    register_guide,
    slot_attributes,
)

__all__ = [
    "GuideError",
    "_MLP_PARAMS",
    "GUIDE_OPTIONS",
    "PyGGuideConv",
    "build_pyg_conv",
    "MAX_INIT_RATIO",
    "check_guide_scale",
    "SimilarityGCNConv",
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
