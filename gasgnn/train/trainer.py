"""Training derived networks from scratch: :class:`Trainer`.

The trainer runs SGD with a poly schedule and linear warm-up, optional auxiliary head, OHEM or
median-frequency class weights, mixed precision on CUDA, and writes one run directory
(:class:`~gasgnn.runner.RunDir`):

.. code-block:: text

    out/
      last.pt        full state after every epoch (model, optimizer, scheduler, scaler, RNG, history)
      best.pt        weights with the best validation mIoU (plus the model spec to rebuild the network)
      metrics.csv    epoch, lr, train_loss, val_miou, val_pixel_acc, seconds
      curves.png     loss and mIoU curves
      config.json    the training config and model spec

``Trainer(...).fit(resume=True)`` continues from ``last.pt``; on the CPU in deterministic mode the
resumed run ends with exactly the weights of an uninterrupted one (every epoch's shuffle order is a
function of the seed and the epoch, and the RNG states are restored). ``last.pt`` is written before each
validation, so a validation that fails keeps the trained epoch.

Under ``torchrun`` the network is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`,
each rank trains on its :class:`~torch.utils.data.DistributedSampler` shard (``batch_size`` images
per rank), validation sums the ranks' confusion matrices, and only rank 0 writes (``docs/distributed.md``).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from gasgnn import distributed as dist
from gasgnn.data import make_loader
from gasgnn.errors import DivergedError
from gasgnn.genotype import Genotype
from gasgnn.models import build_model, gasnet_spec
from gasgnn.runner import Change, MetricLogger, RunDir, RunLoop, cpu_threads, set_lambda_lr
from gasgnn.train.config import TrainConfig, poly_warmup
from gasgnn.train.curves import plot_curves
from gasgnn.train.evaluate import evaluate
from gasgnn.train.losses import OhemCrossEntropy, median_frequency_weights
from gasgnn.utils import rng_state, seed_everything, set_rng_state

__all__ = ["RESUMABLE_CHANGES", "Trainer", "TrainingDiverged"]

#: Config fields that may differ between a run and its resumption (they do not change the results).
RESUMABLE_CHANGES = frozenset({"workers", "progress", "device"})


class TrainingDiverged(DivergedError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


class Trainer(RunLoop):
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
        extra_config (dict, optional): Recorded in ``config.json`` (e.g. the command's options).
        loggers (sequence, optional): Logger backends besides ``metrics.csv`` (e.g. ``["tensorboard"]``).
    """

    kind = "train"
    checkpoint_file = RunDir.LAST
    metric_fields = ("epoch", "lr", "train_loss", "val_miou", "val_pixel_acc", "seconds")
    metric_newline = "\n"
    harmless = frozenset(f"config.{k}" for k in RESUMABLE_CHANGES)
    fixed = ("spec",)
    lower = "a lower --lr (or a longer --warmup-iters, or no --amp)"
    diverged_error = TrainingDiverged

    def __init__(
        self,
        model: Genotype | dict[str, Any],
        train_set: Any,
        val_set: Any = None,
        config: TrainConfig | None = None,
        out: str | os.PathLike = "runs/train",
        callbacks: Sequence[Callable[[Trainer, dict[str, Any]], None]] = (),
        extra_config: dict[str, Any] | None = None,
        loggers: Sequence[str | MetricLogger] = (),
    ) -> None:
        super().__init__(out, loggers)
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
        self.iteration = 0
        self.best_miou = -math.inf
        self.best_epoch = -1

    @property
    def history(self) -> list[dict[str, Any]]:
        """One row per completed epoch (``metrics.csv`` plus the per-class IoU)."""
        return self.rows

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

    # --- the checkpoint (RunLoop's typed interface) ------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """The settings that change a training's results (compared on resume)."""
        return {"config": self._config_dict(), "spec": self.spec, "threads": cpu_threads(self.device)}

    def checkpoint_settings(self, state: Mapping[str, Any]) -> dict[str, Any]:
        return dict(state.get("settings") or {"config": state.get("config", {}), "spec": state.get("spec")})

    def check_checkpoint(self, state: Any, path: Path) -> None:
        if not isinstance(state, dict) or not {"model", "spec", "optimizer"} <= set(state):
            raise ValueError(f"--resume: {path} is not a training checkpoint of 'gasgnn train' (needs 'model', "
                             f"'spec' and 'optimizer')")

    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`fit` needs to resume."""
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
            "epoch": self.epoch, "iteration": self.iteration, "best_miou": self.best_miou,
            "best_epoch": self.best_epoch, "history": self.rows, "rng": rng_state(), "spec": self.spec,
            "config": self._config_dict(), "dataset": self._dataset_meta(), "world_size": dist.world_size(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores :meth:`state_dict` (after the model is built)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.iteration = int(state["epoch"]), int(state["iteration"])
        self.best_miou, self.best_epoch = float(state["best_miou"]), int(state["best_epoch"])
        self.rows = list(state["history"])
        set_rng_state(state["rng"])
        if state.get("world_size", 1) != dist.world_size() and dist.is_main():
            print(f"resume: {self.checkpoint_path} was written by {state.get('world_size', 1)} processes, this run "
                  f"has {dist.world_size()}; the global batch and the schedule length change", file=sys.stderr)

    def apply_changes(self, changes: list[Change]) -> None:
        """The new learning rate, momentum and weight decay go into the optimiser and the poly schedule's
        ``base_lrs`` (e.g. a lower ``--lr`` after a divergence, for real)."""
        cfg = self.config
        set_lambda_lr(self.optimizer, self.scheduler, cfg.lr)
        for g in self.optimizer.param_groups:
            g["momentum"], g["weight_decay"] = cfg.momentum, cfg.weight_decay

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
            value = dist.reduce_scalar(loss, "mean")
            if not math.isfinite(value):
                raise self.diverged(f"training loss became {value} (iteration {self.iteration + 1})")
            self.check_modules(model=self.model)  # a finite loss can hide NaN/inf weights or BN statistics
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
        self.allow_changes = allow_changes
        if resume:
            self.resume(map_location=self.device)
            dist.check_same(self.epoch, f"the epoch resumed from {self.checkpoint_path}")
        dist.check_identical(self.model.named_parameters(), "network weights")
        main = dist.is_main()  # only rank 0 writes
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            self.run_dir.write_config({"config": self._config_dict(), "spec": self.spec,
                                       "dataset": self._dataset_meta(), "threads": cpu_threads(self.device),
                                       **self.extra_config})
        self.start_logging(config=self.settings())  # a resumed run rewrites metrics.csv from its checkpoint
        try:
            while self.epoch < cfg.epochs and self.iteration < self.total_iters:
                self._fit_epoch(main)
        finally:
            self.close_loggers()
        best = self.best_miou if self.val_set is not None else (self.rows[-1]["val_miou"] if self.rows else math.nan)
        return {"best_miou": best, "best_epoch": self.best_epoch, "epochs": self.epoch,
                "iterations": self.iteration, "last": self.rows[-1] if self.rows else None,
                "seconds": time.perf_counter() - t_start, "out": str(self.out)}

    def _fit_epoch(self, main: bool) -> None:
        cfg, t0 = self.config, time.perf_counter()
        dist.seed_rank(cfg.seed, self.epoch)  # distributed: per-rank augmentation, reproducible on resume
        lr = self.optimizer.param_groups[0]["lr"]
        train_loss = self.train_epoch()
        self.epoch += 1
        final = self.epoch == cfg.epochs or self.iteration >= self.total_iters
        row: dict[str, Any] = {"epoch": self.epoch, "lr": lr, "train_loss": train_loss,
                               "val_miou": math.nan, "val_pixel_acc": math.nan}
        self.rows.append(row)
        self.check_modules(model=self.model)  # last.pt and best.pt are written only from a finite model
        if self.val_set is not None and (self.epoch % cfg.val_every == 0 or final):
            if main:
                self.save_checkpoint()  # the trained epoch survives a validation that fails
            dist.barrier()
            res = self.validate()
            row.update(val_miou=res["miou"], val_pixel_acc=res["pixel_acc"], val_per_class_iou=res["per_class_iou"])
        row["seconds"] = time.perf_counter() - t0
        score = row["val_miou"] if self.val_set is not None else -train_loss
        if not math.isnan(score) and score > self.best_miou:
            self.best_miou, self.best_epoch = score, self.epoch
            if main:
                self.run_dir.save_checkpoint({"model": self.model.state_dict(), "spec": self.spec, "epoch": self.epoch,
                                              "miou": row["val_miou"], "dataset": self._dataset_meta(),
                                              "config": self._config_dict()}, RunDir.BEST)
        if main:
            self.save_checkpoint()
            self.log_epoch(row, {"lr": lr})
            self.run_dir.write_bytes(RunDir.CURVES, plot_curves(self.rows))
        dist.barrier()  # last.pt of this epoch exists before any rank moves on (or is killed)
        for cb in self.callbacks:
            cb(self, row)
