"""Training derived networks from scratch: :class:`Trainer`, its config, losses and LR schedule.

The trainer runs SGD with a poly schedule and linear warm-up, optional auxiliary head, OHEM or
median-frequency class weights, mixed precision on CUDA, and writes one run directory:

.. code-block:: text

    out/
      last.pt        full state after every epoch (model, optimizer, scheduler, scaler, RNG, history)
      best.pt        weights with the best validation mIoU (plus the model spec to rebuild the network)
      metrics.csv    epoch, lr, train_loss, val_miou, val_pixel_acc, seconds
      curves.png     loss and mIoU curves
      config.json    the training config and model spec

``Trainer(...).fit(resume=True)`` continues from ``last.pt``; on the CPU in deterministic mode the
resumed run ends with exactly the weights of an uninterrupted one (every epoch's shuffle order is a
function of the seed and the epoch, and the RNG states are restored).

Under ``torchrun`` the network is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`,
each rank trains on its :class:`~torch.utils.data.DistributedSampler` shard (``batch_size`` images
per rank), validation sums the ranks' confusion matrices, and only rank 0 writes (``docs/distributed.md``).
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from gasgnn import distributed as dist
from gasgnn.data import make_loader
from gasgnn.genotype import Genotype
from gasgnn.models import build_model, gasnet_spec, load_checkpoint
from gasgnn.search import resume as _resume
from gasgnn.train.evaluate import evaluate
from gasgnn.train.losses import OhemCrossEntropy, median_frequency_weights
from gasgnn.utils import (
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_text,
    nonfinite_state,
    rng_state,
    seed_everything,
    set_rng_state,
    write_json,
)

__all__ = ["RESUMABLE_CHANGES", "TrainConfig", "Trainer", "TrainingDiverged", "poly_warmup", "plot_curves"]

#: Config fields that may differ between a run and its resumption (they do not change the results).
RESUMABLE_CHANGES = frozenset({"workers", "progress", "device"})


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    """Training hyper-parameters (every field is a ``gasgnn train`` option).

    Args:
        epochs (int, optional): Epochs. (default: :obj:`100`)
        batch_size (int, optional): Images per step. (default: :obj:`8`)
        lr (float, optional): Peak learning rate of SGD. (default: :obj:`0.01`)
        momentum (float, optional): SGD momentum. (default: :obj:`0.9`)
        weight_decay (float, optional): Weight decay. (default: :obj:`5e-4`)
        warmup_iters (int, optional): Linear warm-up iterations. (default: :obj:`200`)
        warmup_factor (float, optional): LR factor at iteration 0 of the warm-up. (default: :obj:`0.1`)
        poly_power (float, optional): Exponent of the poly decay. (default: :obj:`0.9`)
        max_iters (int, optional): Cap on total iterations (the schedule ends there). (default: :obj:`None`)
        crop_size (tuple, optional): Training crop ``(H, W)``. (default: ``(360, 480)``)
        scale_range (tuple, optional): Random scale range. (default: ``(0.5, 2.0)``)
        val_size (tuple, optional): Resize validation images; :obj:`None` = native. (default: :obj:`None`)
        val_every (int, optional): Validate every n epochs (and at the last). (default: :obj:`1`)
        head (str, optional): ``'aspp'`` or ``'ppm'``. (default: :obj:`"aspp"`)
        head_channels (int, optional): Head width. (default: :obj:`128`)
        aux (bool, optional): Auxiliary head. (default: :obj:`False`)
        aux_weight (float, optional): Its loss weight. (default: :obj:`0.4`)
        ohem (bool, optional): OHEM cross-entropy. (default: :obj:`False`)
        ohem_thresh (float, optional): OHEM keeps pixels whose true-class probability is below this.
            (default: :obj:`0.7`)
        ohem_min_kept (int, optional): ... and at least this many pixels per batch. (default: :obj:`100000`)
        class_weights (bool, optional): Median-frequency class weights. (default: :obj:`False`)
        amp (bool, optional): Mixed precision (CUDA only; ignored on the CPU). (default: :obj:`False`)
        workers (int, optional): Loader processes. (default: :obj:`2`)
        seed (int, optional): Seed of weights, shuffling and augmentation. (default: :obj:`0`)
        deterministic (bool, optional): Deterministic algorithms. (default: :obj:`False`)
        device (str, optional): ``'auto'``, ``'cpu'`` or ``'cuda'`` (``cuda:LOCAL_RANK`` under
            ``torchrun``). (default: ``"auto"``)
        progress (bool, optional): Progress bars (rank 0 only). (default: :obj:`True`)
        sync_bn (bool, optional): Distributed runs: synchronised batch norm (statistics over the global
            batch). (default: :obj:`False`)
    """

    epochs: int = 100
    batch_size: int = 8
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_iters: int = 200
    warmup_factor: float = 0.1
    poly_power: float = 0.9
    max_iters: int | None = None
    crop_size: tuple[int, int] = (360, 480)
    scale_range: tuple[float, float] = (0.5, 2.0)
    val_size: tuple[int, int] | None = None
    val_every: int = 1
    head: str = "aspp"
    head_channels: int = 128
    aux: bool = False
    aux_weight: float = 0.4
    ohem: bool = False
    ohem_thresh: float = 0.7
    ohem_min_kept: int = 100_000
    class_weights: bool = False
    amp: bool = False
    workers: int = 2
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    progress: bool = True
    sync_bn: bool = False

    def __post_init__(self) -> None:
        self.crop_size = tuple(int(v) for v in self.crop_size)  # type: ignore[assignment]
        self.scale_range = tuple(float(v) for v in self.scale_range)  # type: ignore[assignment]
        if self.val_size is not None:
            self.val_size = tuple(int(v) for v in self.val_size)  # type: ignore[assignment]
        for name in ("epochs", "batch_size", "val_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name}: must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"TrainConfig.lr: must be > 0, got {self.lr}")
        if self.max_iters is not None and self.max_iters < 1:
            raise ValueError(f"TrainConfig.max_iters: must be >= 1, got {self.max_iters}")
        if not 0 < self.ohem_thresh <= 1:
            raise ValueError(f"TrainConfig.ohem_thresh: must be in (0, 1], got {self.ohem_thresh}")


def poly_warmup(total_iters: int, warmup_iters: int, warmup_factor: float = 0.1, power: float = 0.9
                ) -> Callable[[int], float]:
    """The LR factor per iteration: linear warm-up from ``warmup_factor`` to 1, then poly decay to 0.

    Args:
        total_iters (int): Iterations of the whole run.
        warmup_iters (int): Warm-up iterations (clipped to ``total_iters``).
        warmup_factor (float, optional): Factor at iteration 0. (default: :obj:`0.1`)
        power (float, optional): Poly exponent. (default: :obj:`0.9`)

    Returns:
        callable: ``it -> factor`` for :class:`~torch.optim.lr_scheduler.LambdaLR`.
    """
    warmup_iters = min(warmup_iters, total_iters)

    def factor(it: int) -> float:
        poly = max(0.0, 1.0 - it / total_iters) ** power
        if it < warmup_iters:
            return poly * (warmup_factor + (1.0 - warmup_factor) * it / warmup_iters)
        return poly

    return factor


class Trainer:
    """Trains a segmentation network from scratch and tracks validation mIoU.

    Args:
        model (Genotype or dict): A genotype (built as a GASNet with the config's head and auxiliary
            head, classes from ``train_set``) or a model spec (see :mod:`gasgnn.train.evaluate`).
        train_set (Dataset): Training set with its augmentation, yielding ``(image, mask)``; needs
            ``num_classes`` (and ideally ``ignore_index``, ``classes``, ``palette``).
        val_set (Dataset, optional): Validation set; :obj:`None` skips validation (best.pt then
            tracks the lowest training loss). (default: :obj:`None`)
        config (TrainConfig, optional): Hyper-parameters. (default: :obj:`TrainConfig()`)
        out (str or PathLike, optional): Run directory. (default: ``"runs/train"``)
        callbacks (sequence of callable, optional): ``cb(trainer, row)`` after each epoch's checkpoint
            (on every rank of a distributed run; :func:`gasgnn.distributed.is_main` tells rank 0).
    """

    def __init__(
        self,
        model: Genotype | dict[str, Any],
        train_set: Any,
        val_set: Any = None,
        config: TrainConfig | None = None,
        out: str | os.PathLike = "runs/train",
        callbacks: Sequence[Callable[[Trainer, dict[str, Any]], None]] = (),
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        self.config = cfg = config or TrainConfig()
        self.extra_config = dict(extra_config or {})  # recorded in config.json (e.g. the command's options)
        if val_set is not None and len(val_set) == 0:
            raise ValueError("the validation split has no images (an empty list file?); fix it, or train without "
                             "validation (--val-split none)")
        self.train_set, self.val_set = train_set, val_set
        self.out = Path(out)
        self.callbacks = list(callbacks)
        self.num_classes = int(train_set.num_classes)
        self.ignore_index = int(getattr(train_set, "ignore_index", 255))
        if isinstance(model, Genotype):
            model = gasnet_spec(model, self.num_classes, cfg.head, cfg.head_channels, cfg.aux)
        if int(model.get("num_classes", self.num_classes)) != self.num_classes:
            raise ValueError(f"model spec has {model['num_classes']} classes, the dataset {self.num_classes}")
        self.spec = model
        self.device = dist.resolve_device(cfg.device)
        self.use_amp = cfg.amp and self.device.type == "cuda"
        self.history: list[dict[str, Any]] = []
        self.epoch = 0  # completed epochs
        self.iteration = 0
        self.best_miou = -math.inf
        self.best_epoch = -1

    # ------------------------------------------------------------------------------------------
    @property
    def iters_per_epoch(self) -> int:
        """Steps per epoch of each rank (its shard of ``len(train_set) // world_size`` images)."""
        per_rank = len(self.train_set) // dist.world_size()
        n = per_rank // self.config.batch_size  # drop_last: BN needs full batches
        if n < 1:
            shard = f" ({per_rank} per rank)" if dist.is_distributed() else ""
            raise ValueError(
                f"training set has {len(self.train_set)} images{shard}, < batch_size {self.config.batch_size}"
            )
        return n

    @property
    def total_iters(self) -> int:
        total = self.config.epochs * self.iters_per_epoch
        return min(total, self.config.max_iters) if self.config.max_iters else total

    def _setup(self) -> None:
        cfg = self.config
        seed_everything(cfg.seed, cfg.deterministic)
        self.model = build_model(self.spec).to(self.device)
        if cfg.aux and getattr(self.model, "aux_index", None) is None:
            raise ValueError("--aux needs a network with an auxiliary head (a GASNet)")
        # self.model stays the plain network (checkpoints, validation); self.net is what training calls.
        self.net: nn.Module = self.model
        if dist.is_distributed():
            from torch.nn.parallel import DistributedDataParallel

            if cfg.sync_bn:
                self.model = self.net = dist.convert_sync_batchnorm(self.model, self.device)
            self.net = DistributedDataParallel(  # broadcasts rank 0's weights on construction
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                         weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, poly_warmup(self.total_iters, cfg.warmup_iters, cfg.warmup_factor, cfg.poly_power)
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.use_amp)
        weight = None
        if cfg.class_weights:
            weight = median_frequency_weights(self.train_set, self.num_classes, self.ignore_index,
                                              cfg.progress and dist.is_main())
        weight = weight.to(self.device) if weight is not None else None
        if cfg.ohem:
            self.criterion: nn.Module = OhemCrossEntropy(
                self.ignore_index, cfg.ohem_thresh, cfg.ohem_min_kept, weight).to(self.device)
        else:
            self.criterion = nn.CrossEntropyLoss(weight=weight, ignore_index=self.ignore_index)

    def _config_dict(self) -> dict[str, Any]:
        d = asdict(self.config)
        d["crop_size"], d["scale_range"] = list(d["crop_size"]), list(d["scale_range"])
        d["val_size"] = list(d["val_size"]) if d["val_size"] is not None else None
        return d

    def _dataset_meta(self) -> dict[str, Any]:
        ds = self.train_set
        return {
            "name": getattr(ds, "name", type(ds).__name__), "num_classes": self.num_classes,
            "ignore_index": self.ignore_index, "classes": list(getattr(ds, "classes", [])),
            "palette": [list(c) for c in getattr(ds, "palette", [])],
        }

    # ------------------------------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        """Writes ``last.pt`` atomically with everything :meth:`fit` needs to resume."""
        state = {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
            "epoch": self.epoch, "iteration": self.iteration, "best_miou": self.best_miou,
            "best_epoch": self.best_epoch, "history": self.history, "rng": rng_state(), "spec": self.spec,
            "config": self._config_dict(), "dataset": self._dataset_meta(), "world_size": dist.world_size(),
        }
        return atomic_torch_save(state, self.out / "last.pt")

    def load_checkpoint(self, path: str | os.PathLike, allow_changes: bool = False) -> None:
        """Restores :meth:`save_checkpoint`'s state (after the model is built); ``allow_changes`` applies and
        records a differing config (:mod:`gasgnn.search.resume`) instead of refusing it."""

        ckpt = load_checkpoint(path, map_location=self.device)
        if ckpt["spec"] != self.spec:
            raise ValueError(f"resume: {path} was trained with another network (model spec differs)")
        old, new = ckpt.get("config", {}), self._config_dict()
        # A field newer than the checkpoint counts as its default (old runs resume unchanged).
        diff = [k for k in new if k not in RESUMABLE_CHANGES and old.get(k, getattr(TrainConfig, k, None)) != new[k]]
        changes = [(k, old.get(k, getattr(TrainConfig, k, None)), new[k]) for k in diff]
        _resume.check_changes(changes, path, allow_changes)
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.iteration = int(ckpt["epoch"]), int(ckpt["iteration"])
        self.best_miou, self.best_epoch = float(ckpt["best_miou"]), int(ckpt["best_epoch"])
        self.history = list(ckpt["history"])
        set_rng_state(ckpt["rng"])
        _resume.apply_train_changes(self, changes)  # e.g. a lower --lr after a divergence, for real
        if ckpt.get("world_size", 1) != dist.world_size() and dist.is_main():
            print(f"resume: {path} was written by {ckpt.get('world_size', 1)} processes, this run has "
                  f"{dist.world_size()}; the global batch and the schedule length change", file=sys.stderr)

    def _write_logs(self) -> None:
        cols = ["epoch", "lr", "train_loss", "val_miou", "val_pixel_acc", "seconds"]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(self.history)
        atomic_write_text(self.out / "metrics.csv", buf.getvalue())
        atomic_write_bytes(self.out / "curves.png", plot_curves(self.history))

    # ------------------------------------------------------------------------------------------
    def train_epoch(self) -> float:
        """Runs one epoch (or up to ``max_iters``); returns the mean training loss."""

        cfg = self.config
        self.net.train()
        # One loader per epoch seeded by (seed, epoch): the shuffle order does not depend on history.
        # Distributed: every rank draws the same permutation (seed + epoch) and takes its own stride.
        seed = cfg.seed * 100_003 + self.epoch
        sampler = dist.train_sampler(self.train_set, cfg.seed * 100_003, self.epoch)
        extra: dict[str, Any] = {} if sampler is None else {"sampler": sampler}
        loader = make_loader(self.train_set, cfg.batch_size, shuffle=sampler is None, num_workers=cfg.workers,
                             seed=seed + 1_000_003 * dist.rank(), drop_last=True,
                             pin_memory=self.device.type == "cuda", **extra)
        n_iters = min(self.iters_per_epoch, self.total_iters - self.iteration)
        total, count = 0.0, 0
        bar = tqdm(loader, total=n_iters, desc=f"epoch {self.epoch + 1}/{cfg.epochs}", leave=False,
                   disable=not (cfg.progress and dist.is_main()))
        for images, masks in bar:
            if count >= n_iters:
                break
            images = images.to(self.device, non_blocking=True)
            masks = masks.to(self.device, non_blocking=True)
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.use_amp):
                out = self.net(images)
                if isinstance(out, (tuple, list)):
                    loss = self.criterion(out[0].float(), masks) + cfg.aux_weight * self.criterion(
                        out[1].float(), masks)
                else:
                    loss = self.criterion(out.float(), masks)
            # Distributed: the mean over the ranks, so a NaN anywhere stops every rank together.
            value = dist.reduce_scalar(loss, "mean")  # float(loss) in one process
            if not math.isfinite(value):
                last = self.out / "last.pt"
                keep = (f"the last good checkpoint {last} (epoch {self.epoch}) is kept"
                        if last.is_file() else "no checkpoint was written yet")
                raise TrainingDiverged(
                    f"training loss became {value} at epoch {self.epoch + 1}, "
                    f"iteration {self.iteration + 1}; "
                    f"stopped ({keep}). Try a lower --lr (with --resume --allow-changes), a longer warm-up, "
                    f"or no --amp."
                )
            self._check_finite()  # a finite loss can hide NaN/inf weights or BatchNorm running statistics
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            self.iteration += 1
            total += value
            count += 1
            bar.set_postfix(loss=f"{total / count:.4f}", lr=f"{self.optimizer.param_groups[0]['lr']:.2e}")
        bar.close()
        return total / max(count, 1)

    def _check_finite(self) -> None:
        bad, last = nonfinite_state(self.model), self.out / "last.pt"
        if bad:
            keep = f"the last good checkpoint {last} is kept" if last.is_file() else "no checkpoint was written yet"
            raise TrainingDiverged(f"non-finite values in {', '.join(bad)} at epoch {self.epoch + 1}; stopped "
                                   f"({keep}). Resume with a lower --lr and --allow-changes, or a longer warm-up.")

    def validate(self) -> dict[str, Any]:
        """Evaluates on the validation set (native size or ``val_size``; single scale)."""

        # Distributed: an unpadded shard per rank; evaluate() sums the ranks' confusion matrices.
        loader = make_loader(self.val_set, 1, shuffle=False, num_workers=self.config.workers,
                             sampler=dist.shard_sampler(self.val_set))
        return evaluate(self.model, loader, self.num_classes, self.ignore_index, self.device,
                        amp=self.use_amp, progress=self.config.progress and dist.is_main())

    def fit(self, resume: bool = False, allow_changes: bool = False) -> dict[str, Any]:
        """Trains to the end (or continues from ``last.pt`` with ``resume``).

        Args:
            resume (bool, optional): Continue from ``out/last.pt`` (which must exist). (default: :obj:`False`)
            allow_changes (bool, optional): With ``resume``: apply a config that differs from the
                checkpoint's (recorded in ``config_history.jsonl``). (default: :obj:`False`)

        Returns:
            dict: ``best_miou``, ``best_epoch``, ``epochs``, ``iterations``, ``last`` (the final row),
            ``seconds`` (wall time of this call) and ``out``.

        Raises:
            TrainingDiverged: if the loss becomes NaN or infinite.
        """
        cfg = self.config
        t_start = time.perf_counter()
        self._setup()
        last = self.out / "last.pt"
        if resume and not last.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint {last} to continue (omit --resume to start a new run)")
        if resume:
            self.load_checkpoint(last, allow_changes)
            dist.check_same(self.epoch, f"the epoch resumed from {last}")
        dist.check_identical(self.model.named_parameters(), "network weights")
        main = dist.is_main()  # only rank 0 writes
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_json(self.out / "config.json", {"config": self._config_dict(), "spec": self.spec,
                                                  "dataset": self._dataset_meta(), **self.extra_config})
        while self.epoch < cfg.epochs and self.iteration < self.total_iters:
            t0 = time.perf_counter()
            dist.seed_rank(cfg.seed, self.epoch)  # distributed: per-rank augmentation, reproducible on resume
            lr = self.optimizer.param_groups[0]["lr"]
            train_loss = self.train_epoch()
            self.epoch += 1
            final = self.epoch == cfg.epochs or self.iteration >= self.total_iters
            row: dict[str, Any] = {"epoch": self.epoch, "lr": lr, "train_loss": train_loss,
                                   "val_miou": math.nan, "val_pixel_acc": math.nan}
            if self.val_set is not None and (self.epoch % cfg.val_every == 0 or final):
                res = self.validate()
                row.update(val_miou=res["miou"], val_pixel_acc=res["pixel_acc"],
                           val_per_class_iou=res["per_class_iou"])
            row["seconds"] = time.perf_counter() - t0
            self._check_finite()  # best.pt and last.pt are written only from a finite model
            self.history.append(row)
            score = row["val_miou"] if self.val_set is not None else -train_loss
            if not math.isnan(score) and score > self.best_miou:
                self.best_miou, self.best_epoch = score, self.epoch
                if main:
                    atomic_torch_save({"model": self.model.state_dict(), "spec": self.spec, "epoch": self.epoch,
                                       "miou": row["val_miou"], "dataset": self._dataset_meta(),
                                       "config": self._config_dict()}, self.out / "best.pt")
            if main:
                self.save_checkpoint()
                self._write_logs()
            dist.barrier()  # last.pt of this epoch exists before any rank moves on (or is killed)
            for cb in self.callbacks:
                cb(self, row)
        best = self.best_miou if self.val_set is not None else (self.history[-1]["val_miou"] if self.history
                                                                 else math.nan)
        return {"best_miou": best, "best_epoch": self.best_epoch, "epochs": self.epoch,
                "iterations": self.iteration, "last": self.history[-1] if self.history else None,
                "seconds": time.perf_counter() - t_start, "out": str(self.out)}


def plot_curves(history: Sequence[dict[str, Any]]) -> bytes:
    """PNG bytes of the training curves (loss; validation mIoU and pixel accuracy), matplotlib Agg."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    ep = [r["epoch"] for r in history]
    fig = Figure(figsize=(9, 3.5))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(ep, [r["train_loss"] for r in history], marker=".")
    ax1.set(xlabel="epoch", ylabel="train loss", title="training loss")
    val = [(e, r["val_miou"], r["val_pixel_acc"]) for e, r in zip(ep, history)
           if not math.isnan(r["val_miou"])]
    if val:
        ax2.plot([v[0] for v in val], [100 * v[1] for v in val], marker=".", label="mIoU")
        ax2.plot([v[0] for v in val], [100 * v[2] for v in val], marker=".", label="pixel acc.")
        ax2.legend()
    ax2.set(xlabel="epoch", ylabel="%", title="validation")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()
