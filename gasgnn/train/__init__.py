"""Training and use of derived networks: trainer, losses, evaluation (mIoU), benchmarks (FPS), export (ONNX)."""

from gasgnn.train.bench import (
    BACKENDS,
    DTYPES,
    BackendUnavailable,
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
    ExplicitAdaptiveAvgPool2d,
    export_onnx,
    make_exportable,
    onnx_parity,
    onnx_session,
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
    "BACKENDS",
    "BackendUnavailable",
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
