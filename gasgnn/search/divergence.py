"""Honest divergence handling and settings that cannot work, shared by the search's steps.

A finite loss can hide NaN/inf weights or BatchNorm running statistics, so they are checked with it; a
checkpoint is written only from a finite model; and the message names a checkpoint only if one exists.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from torch import nn

from gasgnn.utils import nonfinite_state

__all__ = ["check_config_values", "diverged_message", "nonfinite_modules"]


def nonfinite_modules(**modules: nn.Module) -> list[str]:
    """Names (``prefix.name``) of non-finite parameters and buffers of the given modules."""
    return nonfinite_state(**modules)  # one pass over all of them: one host read per step


def diverged_message(what: str, epoch: int, run_dir: Path | None) -> str:
    """The divergence message: what happened, and the checkpoint to resume from if one exists."""
    ck = run_dir / "checkpoint.pt" if run_dir is not None else None
    if ck is not None and ck.is_file():
        keep = (f"the last good checkpoint {ck} is kept; resume from it with lower learning rates (--w-lr, "
                f"--a-lr) or latency weight and --resume --allow-changes")
    else:
        keep = ("no checkpoint was written yet; lower the learning rates (--w-lr, --a-lr) or the latency weight "
                "and start again")
    return f"{what} at epoch {epoch}; stopping: {keep}."


def check_config_values(cfg: Any) -> None:
    """Refuses settings of a :class:`~gasgnn.search.SearchConfig` that cannot give a result: NaN/inf
    numbers, ``steps_per_epoch < 1``, ``batch_size < 1`` (errors name the field and its flag)."""
    def flag(k: str) -> str:
        return f"SearchConfig.{k} (--{k.replace('_', '-')})"

    if cfg.steps_per_epoch is not None and cfg.steps_per_epoch < 1:
        raise ValueError(f"{flag('steps_per_epoch')}: must be >= 1, got {cfg.steps_per_epoch}")
    if cfg.batch_size < 1:
        raise ValueError(f"{flag('batch_size')}: must be >= 1, got {cfg.batch_size}")
    for k, v in asdict(cfg).items():
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{flag(k)}: must be a finite number, got {v}")
