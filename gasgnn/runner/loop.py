"""The machinery a search and a training share: :class:`RunLoop`.

A loop owns its run directory (:class:`~gasgnn.runner.rundir.RunDir`), its metric loggers, its checkpoint
and the resumption from it (with ``--allow-changes`` through a typed interface: a loop says which of its
settings change results, how to apply new ones and what its state is), and the divergence check with its
one message. :class:`gasgnn.search.Searcher` and :class:`gasgnn.train.Trainer` are its two subclasses;
neither imports the other.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from gasgnn import distributed as dist
from gasgnn.errors import DivergedError
from gasgnn.runner.loggers import CSVLogger, MetricLogger, build_loggers
from gasgnn.runner.resume import Change, ResumeRefused, check_changes, diff_settings
from gasgnn.runner.rundir import RunDir
from gasgnn.utils import nonfinite_state

__all__ = ["ImageFn", "RunLoop", "cpu_threads", "diverged_message"]

ImageFn = Callable[..., Mapping[str, np.ndarray]]
"""Draws a loop's per-epoch images for loggers that show them (e.g. alpha heat maps, cell drawings);
given by a higher layer (:mod:`gasgnn.viz`), since the loops do not draw."""


def diverged_message(what: str, epoch: int, checkpoint: Path | None, lower: str, checkpoint_epoch: int | None = None
                     ) -> str:
    """The one divergence message: what happened, and what to do with or without a checkpoint.

    Args:
        what (str): E.g. ``"weight loss became nan"``.
        epoch (int): The epoch it happened in (1-based).
        checkpoint (Path, optional): The loop's checkpoint file; it is named only if it exists.
        lower (str): The settings to lower, with their flags.
        checkpoint_epoch (int, optional): The epoch the checkpoint holds.
    """
    if checkpoint is not None and checkpoint.is_file():
        at = f" (epoch {checkpoint_epoch})" if checkpoint_epoch is not None else ""
        keep = (f"the last good checkpoint {checkpoint}{at} is kept; resume from it with {lower} and "
                f"--resume --allow-changes")
    else:
        keep = (f"no checkpoint was written yet, so there is nothing to resume; start again with {lower} and "
                f"--overwrite")
    return f"{what} at epoch {epoch}; stopped: {keep}."


class RunLoop(ABC):
    """Base of the search and training loops (see the module docs).

    Args:
        run_dir (str or PathLike, optional): Where to write; :obj:`None` writes nothing.
        loggers (sequence, optional): Logger backends (names such as ``"tensorboard"``, or
            :class:`~gasgnn.runner.loggers.MetricLogger` instances) besides ``metrics.csv``.
        epoch_images (callable, optional): Draws the per-epoch images for backends that show them.
    """

    #: ``"search"`` or ``"train"``: names the loop in logs, messages and the config history.
    kind: ClassVar[str] = "run"
    #: The loop's checkpoint file (a :class:`RunDir` name).
    checkpoint_file: ClassVar[str] = RunDir.CHECKPOINT
    #: ``metrics.csv`` columns and their float format.
    metric_fields: ClassVar[Sequence[str]] = ()
    metric_format: ClassVar[str | None] = None
    metric_newline: ClassVar[str] = "\r\n"
    #: Settings that may differ on resume without changing results (dotted names).
    harmless: ClassVar[frozenset[str]] = frozenset()
    #: Settings that fix the modules' structure: a changed one cannot be loaded, even with ``--allow-changes``.
    fixed: ClassVar[tuple[str, ...]] = ()
    #: What to lower after a divergence, with the flags (the message's advice).
    lower: ClassVar[str] = "the learning rate"
    #: The error raised on a divergence.
    diverged_error: ClassVar[type[DivergedError]] = DivergedError

    def __init__(self, run_dir: str | Path | None = None, loggers: Sequence[str | MetricLogger] = (),
                 epoch_images: ImageFn | None = None) -> None:
        self.run_dir = RunDir(run_dir) if run_dir is not None else None
        self.epoch = 0  # completed epochs
        self.rows: list[dict[str, Any]] = []  # one row of metrics per completed epoch
        self.allow_changes = False
        self._logger_spec = list(loggers)
        self.loggers: list[MetricLogger] = []
        self.epoch_images = epoch_images

    # --- what a loop defines --------------------------------------------------------------------------
    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """The settings that change the loop's results (compared on resume; JSON-able)."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume (without ``settings``, which the checkpoint adds)."""

    @abstractmethod
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores :meth:`state_dict` (after the modules and optimisers are built)."""

    @abstractmethod
    def apply_changes(self, changes: list[Change]) -> None:
        """After :meth:`load_state_dict`: puts the new values of accepted ``changes`` into effect (learning
        rates into the optimisers and schedules, which the checkpoint restored to the old values)."""

    def check_checkpoint(self, state: Any, path: Path) -> None:
        """Raises ``ValueError`` naming ``path`` when ``state`` is not this loop's kind of checkpoint (the base
        checks only that it is a dict of states)."""
        if not isinstance(state, dict):
            raise ValueError(f"--resume: {path} is not a {self.kind} checkpoint")

    def checkpoint_settings(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """The settings a checkpoint recorded (older checkpoints may keep them elsewhere)."""
        return dict(state.get("settings") or {})

    # --- checkpoint and resume ----------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        """The loop's checkpoint file, :obj:`None` without a run directory."""
        return self.run_dir / self.checkpoint_file if self.run_dir is not None else None

    def save_checkpoint(self) -> Path:
        """Writes the checkpoint atomically (state and settings)."""
        if self.run_dir is None:
            raise ValueError(f"{type(self).__name__}: a checkpoint needs a run directory")
        return self.run_dir.save_checkpoint({**self.state_dict(), "settings": self.settings()}, self.checkpoint_file)

    def resume(self, map_location: Any = "cpu") -> list[Change]:
        """Loads the checkpoint, refusing settings that differ from it unless :attr:`allow_changes`; the
        accepted changes are applied and appended to the run's config history.

        Raises:
            ResumeRefused: no checkpoint, or refused changes.
            ValueError: an unreadable or foreign checkpoint (naming the file).
        """
        path = self.checkpoint_path
        if path is None:
            raise ValueError("resume needs a run directory")
        if not path.is_file():
            raise ResumeRefused(f"--resume: no checkpoint {path} to continue (a {self.kind} writes it after each "
                                f"epoch); start again with --overwrite, or omit --resume and give a new --out")
        state = self.run_dir.load_checkpoint(self.checkpoint_file, map_location, check=self.check_checkpoint)
        changes = diff_settings(self.checkpoint_settings(state), self.settings(), self.harmless)
        check_changes(changes, path, self.allow_changes, self.fixed)
        self.load_state_dict(state)
        if changes:
            self.apply_changes(changes)
            if dist.is_main():
                self.run_dir.append_history({"what": self.kind, "resumed_at_epoch": self.epoch,
                                             "changes": {k: {"from": o, "to": n} for k, o, n in changes}})
        return changes

    # --- divergence ----------------------------------------------------------------------------------
    def diverged(self, what: str) -> DivergedError:
        """The loop's divergence error, with the one message (:func:`diverged_message`)."""
        return self.diverged_error(diverged_message(what, self.epoch + 1, self.checkpoint_path, self.lower,
                                                    self.epoch if self.epoch else None))

    def check_value(self, value: Tensor | float, what: str) -> float:
        """``value`` as a float (the ranks' mean in a distributed run, so a NaN anywhere stops every rank
        together); raises the divergence error when it is NaN or infinite."""
        v = dist.reduce_scalar(value, "mean")
        if not math.isfinite(v):
            raise self.diverged(f"{what} became {v}")
        return v

    def check_modules(self, **modules: nn.Module) -> None:
        """Raises the divergence error when a parameter or batch-norm statistic of ``modules`` is NaN/inf (a
        finite loss can hide them); one host read for all of them."""
        bad = nonfinite_state(**modules)
        if bad:
            raise self.diverged(f"non-finite values in {', '.join(bad)}")

    # --- logging ---------------------------------------------------------------------------------------
    def start_logging(self, config: Mapping[str, Any] | None = None) -> None:
        """Builds the loggers (rank 0 of a run with a directory) and hands them the epochs already done."""
        if self.run_dir is None or not dist.is_main():
            return
        extra = [lg for lg in self._logger_spec if isinstance(lg, MetricLogger)]
        names = [lg for lg in self._logger_spec if isinstance(lg, str)]
        csv = CSVLogger(self.run_dir, self.kind, self.metric_fields, self.metric_format, self.metric_newline)
        self.loggers = [csv, *build_loggers(names, self.run_dir, self.kind, config), *extra]
        for lg in self.loggers:
            lg.start(self.rows)

    def log_epoch(self, row: Mapping[str, Any], scalars: Mapping[str, Any] | None = None,
                  images: Callable[[], Mapping[str, np.ndarray]] | None = None) -> None:
        """Logs one epoch's ``row`` (``metrics.csv``) and extra ``scalars`` (other backends only, e.g. the
        learning rates); ``images`` are drawn only if a backend shows them."""
        if not self.loggers:
            return
        pics = images() if images is not None and any(lg.wants_images for lg in self.loggers) else None
        for lg in self.loggers:
            lg.log(self.epoch, row if isinstance(lg, CSVLogger) else {**row, **(scalars or {})}, pics)

    def close_loggers(self) -> None:
        """Closes every logger (at the end, and when the loop stops on an error)."""
        for lg in self.loggers:
            lg.close()
        self.loggers = []


def cpu_threads(device: torch.device) -> int | None:
    """The intra-op thread count that shapes a CPU run's floating-point results (:obj:`None` off the CPU)."""
    return torch.get_num_threads() if device.type == "cpu" else None
