"""Training and use of derived networks: trainer, losses, evaluation (mIoU), benchmarks (FPS), export (ONNX)."""

from gasgnn.latency import (  # the ONNX export and sessions live below, beside the onnxruntime latency backend
    BackendUnavailable,
    ExplicitAdaptiveAvgPool2d,
    export_onnx,
    make_exportable,
    onnx_session,
)
from gasgnn.train.bench import (
    ALIASES,
    BACKENDS,
    DTYPES,
    backend_name,
    benchmark,
    count_flops,
    environment,
    latency_stats,
    make_runner,
    peak_memory_mb,
)
from gasgnn.train.config import (
    TrainConfig,
    poly_warmup,
)
from gasgnn.train.curves import (
    plot_curves,
)
from gasgnn.train.evaluate import (
    evaluate,
    predict,
)
from gasgnn.train.export import (
    onnx_parity,
)
from gasgnn.train.losses import (
    OhemCrossEntropy,
    median_frequency_weights,
)
from gasgnn.train.trainer import (
    RESUMABLE_CHANGES,
    Trainer,
    TrainingDiverged,
)

__all__ = [
    "OhemCrossEntropy",
    "median_frequency_weights",
    "evaluate",
    "predict",
    "RESUMABLE_CHANGES",
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "poly_warmup",
    "plot_curves",
    "DTYPES",
    "ALIASES",
    "BACKENDS",
    "BackendUnavailable",
    "backend_name",
    "count_flops",
    "latency_stats",
    "make_runner",
    "peak_memory_mb",
    "benchmark",
    "environment",
    "ExplicitAdaptiveAvgPool2d",
    "make_exportable",
    "export_onnx",
    "onnx_session",
    "onnx_parity",
]
