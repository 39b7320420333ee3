"""Resuming a run with the settings it was started with, or with recorded changes.

A checkpoint records the settings that change results (the search space, the guide, latency weight, form
and target, tau, relaxation, learning rates, seed, data, the latency table's content hash; for training
the whole config). Resuming compares them with the new run's and refuses every difference, named, unless
the user allows changes: then the new values are applied for real (learning rates go into the optimisers'
param groups *and* the schedulers' ``base_lrs``, which otherwise restore the old values from the
checkpoint) and appended to ``config_history.jsonl`` in the run directory, so the record still describes
the run.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gasgnn.utils import content_sha1

__all__ = [
    "HISTORY_FILE", "Change", "append_history", "check_changes", "diff_settings", "set_cosine_lr",
    "set_lambda_lr", "table_sha1",
]

#: The file, in the run directory, that records accepted changes (one JSON object per line).
HISTORY_FILE = "config_history.jsonl"

Change = tuple[str, Any, Any]
"""``(dotted name, checkpoint's value, new value)``."""


def table_sha1(table: Any) -> str | None:
    """A content hash of a latency table's entries (:obj:`None` without a table)."""
    if table is None:
        return None
    # entries sorted by their JSON text: the hash does not depend on the order they were measured in
    return content_sha1(sorted(json.dumps(e, sort_keys=True) for e in table.to_dict()["entries"]))


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
        ValueError: naming the checkpoint and each difference.
    """
    def fmt(cs: list[Change]) -> str:
        return "; ".join(f"{k}: {o!r} -> {n!r}" for k, o, n in cs)

    hard = [c for c in changes if any(c[0] == f or c[0].startswith(f + ".") for f in fixed)]
    if hard:
        raise ValueError(
            f"resume: {path} was written with another network ({fmt(hard)}); these cannot change within a run. "
            f"Resume with the checkpoint's settings, or start a new run (another --out, or --overwrite)."
        )
    if changes and not allow_changes:
        raise ValueError(
            f"resume: the settings differ from the checkpoint {path} ({fmt(changes)}). Resume with the "
            f"checkpoint's settings, or pass --allow-changes to apply the new values (recorded in {HISTORY_FILE})."
        )


def append_history(run_dir: str | os.PathLike | None, epoch: int, changes: list[Change], what: str) -> Path | None:
    """Appends the accepted ``changes`` to ``run_dir/config_history.jsonl``."""
    if run_dir is None or not changes:
        return None
    p = Path(run_dir) / HISTORY_FILE
    p.parent.mkdir(parents=True, exist_ok=True)
    rec = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "what": what, "resumed_at_epoch": epoch,
           "changes": {k: {"from": o, "to": n} for k, o, n in changes}}
    with p.open("a", encoding="utf-8") as f:
        f.write(json.dumps(rec, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return p


def set_cosine_lr(opt: Any, sched: Any, lr: float, lr_min: float, t_max: int) -> None:
    """Points an SGD optimiser and its :class:`~torch.optim.lr_scheduler.CosineAnnealingLR` at a new peak
    ``lr`` / floor ``lr_min`` / length, keeping the position; the current learning rate is the closed form
    at the scheduler's epoch (so a lower ``--w-lr`` after a divergence takes effect now)."""
    sched.base_lrs = [lr for _ in opt.param_groups]
    sched.eta_min, sched.T_max = lr_min, t_max
    e = sched.last_epoch
    cur = lr_min + (lr - lr_min) * (1 + math.cos(math.pi * min(e, t_max) / t_max)) / 2
    for g in opt.param_groups:
        g["initial_lr"], g["lr"] = lr, cur
    sched._last_lr = [cur for _ in opt.param_groups]


def set_lambda_lr(opt: Any, sched: Any, lr: float) -> None:
    """Points an optimiser and its :class:`~torch.optim.lr_scheduler.LambdaLR` at a new base ``lr``."""
    sched.base_lrs = [lr for _ in opt.param_groups]
    for g, f in zip(opt.param_groups, sched.lr_lambdas):
        g["initial_lr"], g["lr"] = lr, lr * f(sched.last_epoch)
    sched._last_lr = [g["lr"] for g in opt.param_groups]


def search_settings(searcher: Any) -> dict[str, Any]:
    """The settings of a :class:`~gasgnn.search.Searcher` that change its results."""
    data = dict(searcher.extra_config.get("data") or {})
    data.pop("workers", None)
    return {"space": searcher.space.to_dict(), "search": asdict(searcher.cfg), "data": data,
            "latency_table_sha1": table_sha1(searcher.table)}


#: Search settings that may differ on resume without changing results.
SEARCH_HARMLESS = frozenset({"search.num_workers", "search.check_sync_every", "data.workers"})
#: Search settings that fix the modules' structure (a changed one cannot be loaded).
SEARCH_FIXED = ("space", "search.guide", "search.guide_kwargs", "search.memory")


def resume_search(searcher: Any, st: Mapping[str, Any], path: str | os.PathLike, allow_changes: bool) -> list[Change]:
    """Compares a search checkpoint's settings with ``searcher``'s (raising on a refused difference)."""
    old = st.get("settings") or {"space": st.get("space"), "search": st.get("config", {})}
    changes = diff_settings(old, search_settings(searcher), SEARCH_HARMLESS)
    check_changes(changes, path, allow_changes, SEARCH_FIXED)
    return changes


def apply_search_changes(searcher: Any, changes: list[Change]) -> None:
    """After the checkpoint's optimiser states are loaded: the new learning rates, momentum and weight
    decay go into the optimisers and the cosine schedule (the guide's group keeps its own weight decay),
    and a new FPS window, factor or initial lambda into the adaptive latency weight (whose loaded state
    restored the checkpoint's)."""
    if not changes:
        return
    c = searcher.cfg
    set_cosine_lr(searcher.w_opt, searcher.w_sched, c.w_lr, c.w_lr_min, c.epochs)
    for g in searcher.w_opt.param_groups:
        g["momentum"], g["weight_decay"] = c.w_momentum, c.w_weight_decay
    for g in searcher.a_opt.param_groups:
        wd = c.guide_weight_decay if g.get("name") == "guide" else c.a_weight_decay
        g["lr"], g["initial_lr"], g["weight_decay"] = c.a_lr, c.a_lr, wd
    adaptive = getattr(searcher, "adaptive", None)
    if adaptive is not None:
        adaptive.fps_window, adaptive.factor = tuple(float(v) for v in c.adaptive_fps), float(c.adaptive_factor)
        if any(k == "search.latency_weight" for k, _, _ in changes):
            adaptive.weight = float(c.latency_weight)


def check_search_checkpoint(st: Any, path: str | os.PathLike) -> None:
    """Raises ``ValueError`` naming ``path`` unless ``st`` is a search checkpoint (e.g. a training
    ``last.pt`` given to ``search --resume``)."""
    if not isinstance(st, dict) or not {"net", "space", "w_opt"} <= set(st):
        kind = "a training checkpoint of 'gasgnn train'" if isinstance(st, dict) and "spec" in st else "unknown content"
        raise ValueError(f"--resume: {path} is not a search checkpoint ({kind}); resume a search from the run "
                         f"directory 'gasgnn search' wrote")


def genotype_sha1(genotype: Any) -> str:
    """A content hash of a genotype (``summary.json`` keeps later stages' numbers only for the same one)."""
    return content_sha1(genotype.to_dict())


def apply_train_changes(trainer: Any, changes: list[Change]) -> None:
    """After a training checkpoint is loaded: the new learning rate, momentum and weight decay go into the
    optimiser and the poly schedule's ``base_lrs``; the changes are appended to the history file."""
    if not changes:
        return
    cfg = trainer.config
    set_lambda_lr(trainer.optimizer, trainer.scheduler, cfg.lr)
    for g in trainer.optimizer.param_groups:
        g["momentum"], g["weight_decay"] = cfg.momentum, cfg.weight_decay
    from gasgnn import distributed as dist

    if dist.is_main():
        append_history(trainer.out, trainer.epoch, changes, "train")
