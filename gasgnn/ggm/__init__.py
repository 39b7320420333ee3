"""Graph-guided modules: SimilarityGCNConv, any PyG conv as a guide, the GGM / fc / none guides."""

from gasgnn.ggm.convs import (
    GuideError,
    SimilarityGCNConv,
    CONVS,
    import_object,
    conv_name,
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
    "SimilarityGCNConv",
    "CONVS",
    "import_object",
    "conv_name",
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
