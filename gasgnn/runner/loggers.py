"""Metric logging behind one interface: CSV always, TensorBoard, Weights & Biases and MLflow on request.

A search and a training log one row of scalars per epoch (and, for backends that show them, images such
as alpha heat maps and cell drawings). :class:`CSVLogger` writes the run's ``metrics.csv``; the other
backends are chosen by name (``--logger tensorboard``) from :data:`LOGGERS` and write under the run
directory's ``events/`` folder, offline. W&B and MLflow are optional extras, used when importable.

Add a backend with one registered class::

    from gasgnn.runner import LOGGERS, MetricLogger

    @LOGGERS.register("print")
    class PrintLogger(MetricLogger):
        def log(self, step, scalars, images=None):
            print(step, dict(scalars))
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gasgnn.registry import Registry
from gasgnn.runner.rundir import RunDir

__all__ = ["LOGGERS", "CSVLogger", "MetricLogger", "MLflowLogger", "TensorBoardLogger", "WandbLogger",
           "build_loggers"]

LOGGERS = Registry("logger")
"""Metric logger backends by name (``csv`` is always on and not listed as a choice)."""


class MetricLogger:
    """A metric logging backend.

    Args:
        run_dir (RunDir): The run directory.
        kind (str): ``"search"`` or ``"train"`` (the prefix of the scalar names).
        config (dict, optional): The run's settings, for backends that record them.
    """

    #: Whether :meth:`log` uses images (they are drawn only when some backend does).
    wants_images: bool = False

    def __init__(self, run_dir: RunDir, kind: str, config: Mapping[str, Any] | None = None) -> None:
        self.run_dir, self.kind, self.config = run_dir, kind, dict(config or {})

    def start(self, history: Sequence[Mapping[str, Any]]) -> None:
        """Called once before the first epoch this process runs, with the rows of the epochs already done
        (a resumed run's checkpoint); a backend drops anything it logged after them (a kill between
        logging and the checkpoint)."""

    def log(self, step: int, scalars: Mapping[str, Any], images: Mapping[str, np.ndarray] | None = None) -> None:
        """Logs one epoch: numeric ``scalars`` and ``images`` (``[H, W, 3]`` uint8), at ``step`` (the epoch)."""

    def close(self) -> None:
        """Flushes and releases the backend."""


class CSVLogger(MetricLogger):
    """``metrics.csv`` of the run directory: one row per epoch, rewritten atomically after every epoch.

    Args:
        run_dir (RunDir): The run directory.
        kind (str): ``"search"`` or ``"train"``.
        fields (sequence of str): The columns.
        float_format (str, optional): Format of float cells (:obj:`None`: ``str``).
        newline (str, optional): Line terminator. (default: ``"\\r\\n"``)
    """

    def __init__(self, run_dir: RunDir, kind: str, fields: Sequence[str], float_format: str | None = None,
                 newline: str = "\r\n") -> None:
        super().__init__(run_dir, kind)
        self.fields, self.float_format, self.newline = list(fields), float_format, newline
        self.rows: list[dict[str, Any]] = []

    def start(self, history: Sequence[Mapping[str, Any]]) -> None:
        # Rewritten from the checkpoint's rows: a torn or stale metrics.csv is repaired on resume.
        self.rows = [dict(r) for r in history]
        self.run_dir.write_metrics(self.rows, self.fields, self.float_format, self.newline)

    def log(self, step: int, scalars: Mapping[str, Any], images: Mapping[str, np.ndarray] | None = None) -> None:
        self.rows.append(dict(scalars))
        self.run_dir.write_metrics(self.rows, self.fields, self.float_format, self.newline)


def _numbers(scalars: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in scalars.items():
        if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and math.isfinite(float(v)):
            out[k] = float(v)
    return out


@LOGGERS.register("tensorboard", extra="tensorboard")
class TensorBoardLogger(MetricLogger):
    """TensorBoard event files in ``RUN/events/`` (``tensorboard --logdir RUN/events``): every numeric value
    of the row as ``KIND/name``, and the images (alpha heat maps, derived cells) per epoch."""

    wants_images = True

    def __init__(self, run_dir: RunDir, kind: str, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(run_dir, kind, config)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ValueError("--logger tensorboard: the tensorboard package is not installed "
                             "(pip install 'gasgnn[tensorboard]')") from None
        self._writer_cls = SummaryWriter
        self.writer: Any = None

    def start(self, history: Sequence[Mapping[str, Any]]) -> None:
        logdir = self.run_dir / RunDir.EVENTS
        # purge_step: events a killed run logged after its last checkpoint are dropped on resume
        self.writer = self._writer_cls(str(logdir), purge_step=len(history) + 1 if history else None)

    def log(self, step: int, scalars: Mapping[str, Any], images: Mapping[str, np.ndarray] | None = None) -> None:
        for k, v in _numbers(scalars).items():
            if k != "epoch":
                self.writer.add_scalar(f"{self.kind}/{k}", v, step)
        for k, img in (images or {}).items():
            self.writer.add_image(f"{self.kind}/{k}", np.asarray(img), step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@LOGGERS.register("wandb", extra="wandb")
class WandbLogger(MetricLogger):
    """Weights & Biases in offline mode, under ``RUN/events/`` (``wandb sync`` uploads it later)."""

    wants_images = True

    def __init__(self, run_dir: RunDir, kind: str, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(run_dir, kind, config)
        try:
            import wandb
        except ImportError:
            raise ValueError("--logger wandb: the wandb package is not installed (pip install wandb)") from None
        self.wandb, self.session = wandb, None

    def start(self, history: Sequence[Mapping[str, Any]]) -> None:
        d = self.run_dir / RunDir.EVENTS
        d.mkdir(parents=True, exist_ok=True)
        self.session = self.wandb.init(mode="offline", dir=str(d), config=self.config, name=self.run_dir.path.name,
                                       resume="allow", id=f"gasgnn-{self.kind}-{abs(hash(str(d))) % 10**8}")

    def log(self, step: int, scalars: Mapping[str, Any], images: Mapping[str, np.ndarray] | None = None) -> None:
        data: dict[str, Any] = {f"{self.kind}/{k}": v for k, v in _numbers(scalars).items()}
        data.update({f"{self.kind}/{k}": self.wandb.Image(v) for k, v in (images or {}).items()})
        self.session.log(data, step=step)

    def close(self) -> None:
        if self.session is not None:
            self.session.finish()


@LOGGERS.register("mlflow", extra="mlflow")
class MLflowLogger(MetricLogger):
    """MLflow with a local file store under ``RUN/events/mlruns`` (``mlflow ui --backend-store-uri ...``)."""

    wants_images = True

    def __init__(self, run_dir: RunDir, kind: str, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(run_dir, kind, config)
        try:
            import mlflow
        except ImportError:
            raise ValueError("--logger mlflow: the mlflow package is not installed (pip install mlflow)") from None
        self.mlflow = mlflow

    def start(self, history: Sequence[Mapping[str, Any]]) -> None:
        store = Path(self.run_dir / RunDir.EVENTS) / "mlruns"
        self.mlflow.set_tracking_uri(store.resolve().as_uri())
        self.mlflow.start_run(run_name=f"{self.run_dir.path.name}-{self.kind}")

    def log(self, step: int, scalars: Mapping[str, Any], images: Mapping[str, np.ndarray] | None = None) -> None:
        self.mlflow.log_metrics({f"{self.kind}.{k}": v for k, v in _numbers(scalars).items()}, step=step)
        for k, img in (images or {}).items():
            self.mlflow.log_image(np.asarray(img), f"{self.kind}/{k}_{step:04d}.png")

    def close(self) -> None:
        self.mlflow.end_run()


def build_loggers(names: Sequence[str] | str | None, run_dir: str | os.PathLike | RunDir, kind: str,
                  config: Mapping[str, Any] | None = None) -> list[MetricLogger]:
    """The backends named in ``names`` (``csv`` is skipped: every loop writes ``metrics.csv`` itself).

    Raises:
        ValueError: naming ``--logger`` for an unknown name or a backend whose package is missing.
    """
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    rd = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    out: list[MetricLogger] = []
    for name in dict.fromkeys(n.strip().lower() for n in names or ()):
        if name in ("", "csv", "none"):
            continue
        if name not in LOGGERS:
            raise ValueError(f"--logger: unknown backend {name!r}; choose from csv, {', '.join(LOGGERS.names())}")
        out.append(LOGGERS.get(name)(rd, kind, config))
    return out
