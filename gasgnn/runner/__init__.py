"""The run loop search and training share: the run directory (:class:`RunDir`: every run file's name,
atomic writer and validating reader), claiming it (lock, refusals), reading runs back, checkpoint and
resume with recorded changes, the divergence check and its message, and metric loggers (CSV,
TensorBoard, W&B, MLflow)."""

from gasgnn.runner.lock import (
    RunDirError,
    RunLock,
    check_out_path,
    claim_run_dir,
)
from gasgnn.runner.loggers import (
    LOGGERS,
    CSVLogger,
    MetricLogger,
    MLflowLogger,
    TensorBoardLogger,
    WandbLogger,
    build_loggers,
)
from gasgnn.runner.loop import (
    ImageFn,
    RunLoop,
    cpu_threads,
    diverged_message,
)
from gasgnn.runner.resume import (
    Change,
    ResumeRefused,
    check_changes,
    diff_settings,
    genotype_sha1,
    set_cosine_lr,
    set_lambda_lr,
    table_sha1,
)
from gasgnn.runner.run import (
    Run,
    load_run,
    load_table,
    run_table,
)
from gasgnn.runner.rundir import (
    RunDir,
)

__all__ = [
    "RunDir",
    "RunDirError",
    "RunLock",
    "check_out_path",
    "claim_run_dir",
    "Run",
    "load_run",
    "load_table",
    "run_table",
    "Change",
    "ResumeRefused",
    "check_changes",
    "diff_settings",
    "genotype_sha1",
    "set_cosine_lr",
    "set_lambda_lr",
    "table_sha1",
    "ImageFn",
    "RunLoop",
    "cpu_threads",
    "diverged_message",
    "LOGGERS",
    "CSVLogger",
    "MetricLogger",
    "MLflowLogger",
    "TensorBoardLogger",
    "WandbLogger",
    "build_loggers",
]
