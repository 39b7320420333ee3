"""Resuming a run with the settings it was started with, or with recorded changes.

A checkpoint records the settings that change results (for a search: the space, the guide, the latency
weight, learning rates, seed, data, the latency table's content hash, the CPU thread count; for training:
the whole config and the network). Resuming compares them with the new run's and refuses every difference,
named, unless the user allows changes: then the loop applies the new values for real (learning rates go
into the optimisers' param groups *and* the schedulers' ``base_lrs``, which otherwise restore the old
values from the checkpoint) and the run directory's ``config_history.jsonl`` records them, so the record
still describes the run.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR

from gasgnn.errors import RefusedError
from gasgnn.utils import content_sha1

__all__ = [
    "Change", "ResumeRefused", "check_changes", "diff_settings", "genotype_sha1", "set_cosine_lr", "set_lambda_lr",
    "table_sha1",
]

Change = tuple[str, Any, Any]
"""``(dotted name, checkpoint's value, new value)``."""


class ResumeRefused(RefusedError, ValueError):
    """``--resume`` cannot continue as asked (other settings than the checkpoint's, nothing to resume)."""


def table_sha1(table: Any) -> str | None:
    """A content hash of a latency table's entries (:obj:`None` without a table)."""
    if table is None:
        return None
    # entries sorted by their JSON text: the hash does not depend on the order they were measured in
    return content_sha1(sorted(json.dumps(e, sort_keys=True) for e in table.to_dict()["entries"]))


def genotype_sha1(genotype: Any) -> str:
    """A content hash of a genotype (``summary.json`` keeps later stages' numbers only for the same one)."""
    return genotype.sha1()


def _flat(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    if isinstance(obj, tuple):
        obj = list(obj)
    return {prefix[:-1]: obj}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def diff_settings(old: Mapping[str, Any], new: Mapping[str, Any], ignore: frozenset[str] = frozenset()) -> list[Change]:
    """Differences between two settings trees, as dotted names; names the old one lacks (settings newer
    than the checkpoint) and names in ``ignore`` (or under them) are skipped."""
    fo, fn = _flat(old), _flat(new)
    out = []
    for k in fn:
        if k not in fo or any(k == i or k.startswith(i + ".") for i in ignore):
            continue
        if not _same(fo[k], fn[k]):
            out.append((k, fo[k], fn[k]))
    return out


def check_changes(changes: list[Change], path: str | os.PathLike, allow_changes: bool,
                  fixed: tuple[str, ...] = ()) -> None:
    """Refuses ``changes`` (every one named) unless ``allow_changes``; names under ``fixed`` (the network's
    structure) are refused even then.

    Raises:
        ResumeRefused: naming the checkpoint and each difference.
    """
    def fmt(cs: list[Change]) -> str:
        return "; ".join(f"{k}: {o!r} -> {n!r}" for k, o, n in cs)

    hard = [c for c in changes if any(c[0] == f or c[0].startswith(f + ".") for f in fixed)]
    if hard:
        raise ResumeRefused(
            f"resume: {path} was written with another network ({fmt(hard)}); these cannot change within a run. "
            f"Resume with the checkpoint's settings, or start a new run (another --out, or --overwrite)."
        )
    if changes and not allow_changes:
        raise ResumeRefused(
            f"resume: the settings differ from the checkpoint {path} ({fmt(changes)}). Resume with the "
            f"checkpoint's settings, or pass --allow-changes to apply the new values (recorded in the run's "
            f"config history)."
        )


def set_cosine_lr(opt: Optimizer, sched: CosineAnnealingLR, lr: float, lr_min: float, t_max: int) -> None:
    """Points an optimiser and its cosine schedule at a new peak ``lr`` / floor ``lr_min`` / length, keeping
    the position; the current learning rate is the closed form at the scheduler's epoch (so a lower
    ``--w-lr`` after a divergence takes effect now). Only public fields change: the schedule's next step
    continues from the optimiser's learning rate."""
    sched.base_lrs = [lr for _ in opt.param_groups]
    sched.eta_min, sched.T_max = lr_min, t_max
    e = sched.last_epoch
    cur = lr_min + (lr - lr_min) * (1 + math.cos(math.pi * min(e, t_max) / t_max)) / 2
    for g in opt.param_groups:
        g["initial_lr"], g["lr"] = lr, cur


def set_lambda_lr(opt: Optimizer, sched: LambdaLR, lr: float) -> None:
    """Points an optimiser and its :class:`~torch.optim.lr_scheduler.LambdaLR` at a new base ``lr``."""
    sched.base_lrs = [lr for _ in opt.param_groups]
    for g, f in zip(opt.param_groups, sched.lr_lambdas):
        g["initial_lr"], g["lr"] = lr, lr * f(sched.last_epoch)
