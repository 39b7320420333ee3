"""The GAS search: latency-aware, first-order bi-level optimisation of a cell-independent supernet.

One step updates alpha and the guidance module on the architecture half of the training set (loss =
cross-entropy + lambda * latency term, both computed from alpha' = guide(alpha, ArchGraph)), then the
network weights on the weights half. alpha' is what the supernet, the latency term and the derivation
use alike, under one relaxed distribution per step (softmax(alpha'/tau) or one Gumbel sample).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from gasgnn import distributed as dist
from gasgnn.errors import DivergedError
from gasgnn.genotype import Genotype, derive, op_entropy
from gasgnn.ggm import DIAGNOSTICS, build_guide, guide_diagnostics, guide_regularizer
from gasgnn.latency import LatencyTable, latency_loss
from gasgnn.models import Supernet
from gasgnn.runner import (
    Change,
    ImageFn,
    MetricLogger,
    RunDir,
    RunLoop,
    cpu_threads,
    genotype_sha1,
    set_cosine_lr,
    table_sha1,
)
from gasgnn.search.config import SearchConfig
from gasgnn.search.evaluate import evaluate_supernet
from gasgnn.search.optim import SearchOptim, compiled_forward, frozen
from gasgnn.space import SearchSpace
from gasgnn.utils import rng_state, seed_everything, set_rng_state

METRIC_FIELDS = [
    "epoch", "train_loss", "val_loss", "val_miou", "expected_latency_ms", "expected_fps", "alpha_entropy",
    "latency_weight", "tau", "seconds", "genotype_changes", *DIAGNOSTICS,
]


class SearchDivergedError(DivergedError):
    """The loss became NaN or inf; the last good checkpoint is kept."""


def alpha_entropy(alpha: Tensor) -> float:
    """Mean entropy (nats) of softmax(alpha) over ArchGraph nodes; log(K) is uniform."""
    return float(op_entropy(alpha).mean())


LoaderFactory = Callable[[int], Iterable]
"""``factory(epoch) -> iterable of (images, masks)``; seeded by the epoch so a resumed run sees the
same batches as an uninterrupted one."""


class Searcher(RunLoop):
    """Runs a GAS search and writes a run directory (:class:`~gasgnn.runner.RunDir`).

    The run directory holds ``config.json``, ``metrics.csv``, ``alpha_history.pt`` (alpha' per epoch,
    ``[epochs, N, K]``), ``checkpoint.pt`` (atomic, every epoch), ``genotype.json`` (the genotype
    derived so far), ``latency_table.json`` and ``summary.json``.

    Args:
        space (SearchSpace): The search space.
        config (SearchConfig): Search settings.
        weights_loader (callable): ``factory(epoch)`` of batches for the weight step.
        arch_loader (callable): ``factory(epoch)`` of batches for the architecture step.
        val_loader (callable, optional): ``factory(epoch)`` of batches for the per-epoch mIoU (the
            architecture half without augmentation); defaults to ``arch_loader``.
        table (LatencyTable, optional): Latency table covering ``space``; without it the latency term
            is off.
        run_dir (str or Path, optional): Where to write; :obj:`None` writes nothing.
        device (str or torch.device, optional): (default: :obj:`"cpu"`)
        ignore_index (int, optional): Label to ignore. (default: :obj:`255`)
        extra_config (dict, optional): Recorded in ``config.json`` (e.g. the data settings).
        progress (bool, optional): Progress bars (rank 0 only). (default: :obj:`True`)
        loggers (sequence, optional): Logger backends besides ``metrics.csv`` (e.g. ``["tensorboard"]``).
        epoch_images (callable, optional): ``epoch_images(alpha=alpha', genotype=g, space=space)`` draws the
            per-epoch images for backends that show them (:func:`gasgnn.viz.search_epoch_images`).

    In a ``torch.distributed`` process group each rank runs this loop on its shard of the data, with
    gradients averaged over the ranks, and only rank 0 writes (``docs/distributed.md``).
    """

    kind = "search"
    checkpoint_file = RunDir.CHECKPOINT
    metric_fields = METRIC_FIELDS
    metric_format = ".6g"
    harmless = frozenset({"search.num_workers", "search.check_sync_every", "data.workers"})
    fixed = ("space", "search.guide", "search.guide_kwargs", "search.memory")
    lower = "lower learning rates (--w-lr, --a-lr) or a lower latency weight"
    diverged_error = SearchDivergedError

    def __init__(
        self, space: SearchSpace, config: SearchConfig, weights_loader: LoaderFactory, arch_loader: LoaderFactory,
        val_loader: LoaderFactory | None = None, table: LatencyTable | None = None,
        run_dir: str | Path | None = None, device: str | torch.device = "cpu", ignore_index: int = 255,
        extra_config: dict | None = None, progress: bool = True, loggers: Iterable[str | MetricLogger] = (),
        epoch_images: ImageFn | None = None,
    ) -> None:
        super().__init__(run_dir, tuple(loggers), epoch_images)
        self.space, self.cfg = space, config
        self.device = torch.device(device)
        self.weights_loader, self.arch_loader = weights_loader, arch_loader
        self.val_loader = val_loader or arch_loader
        self.table = table
        self.ignore_index = ignore_index
        self.progress = progress and dist.is_main()
        self.extra_config = extra_config or {}
        seed_everything(config.seed, config.deterministic)
        self.net = Supernet(space, memory=config.memory or None, batched=config.supernet_impl == "batched").to(
            self.device)
        if config.sync_bn and dist.is_distributed():
            self.net = dist.convert_sync_batchnorm(self.net, self.device)
        self.guide = build_guide(config.guide, space, **config.guide_kwargs).to(self.device)
        dist.broadcast_module(self.net)  # every rank starts from rank 0's weights and alpha
        dist.broadcast_module(self.guide)
        self.graph = space.arch_graph(self.net.alpha.detach()).to(self.device)
        # The LUT is compiled once; every step only does softmax(alpha') . rows.
        # scale_edges: weigh edges by the share a derived network keeps, so the expected latency is on
        # the scale of the derived network (what the target form and the logged FPS compare against).
        self.lut = None if table is None else table.for_space(
            space, self.graph, head=config.head, scale_edges=True, exclude_none=config.latency_without_none)
        if self.lut is not None:  # a rank with another table would pull alpha elsewhere
            dist.check_identical({"rows": self.lut.rows, "cell_const": self.lut.cell_const}, "latency tables")
        self.optim = SearchOptim.build(self.net, self.guide, config, self.device)
        self.w_opt, self.w_sched, self.a_opt = self.optim.w_opt, self.optim.w_sched, self.optim.a_opt
        self.adaptive, self.use_amp, self.amp_dtype = self.optim.adaptive, self.optim.use_amp, self.optim.amp_dtype
        self.w_params = list(self.net.weight_parameters())
        self.a_params = list(self.net.arch_parameters()) + [p for p in self.guide.parameters() if p.requires_grad]
        self.run_net = compiled_forward(self.net, config, self.device)
        self.alpha_history: list[Tensor] = []
        self.last_genotype: Genotype | None = None
        self.steps_done = 0  # steps of this process (the periodic drift check)

    # ------------------------------------------------------------------------------------------
    def tau(self, epoch: int) -> float:
        """Temperature at ``epoch`` (exponential from ``tau_start`` to ``tau_end``)."""
        c = self.cfg
        if c.epochs <= 1:
            return c.tau_end
        return c.tau_start * (c.tau_end / c.tau_start) ** (epoch / (c.epochs - 1))

    def alpha_prime(self) -> Tensor:
        """alpha' = guide(alpha, ArchGraph)."""
        return self.guide(self.net.alpha, self.graph)

    def relaxed_logits(self, alpha_p: Tensor, tau: float) -> Tensor:
        r"""This step's logits: :math:`\alpha'/\tau`, or :math:`(\alpha' + g)/\tau` with Gumbel noise :math:`g`
        (one sample). The supernet forward takes their softmax and the latency term the same logits (its LUT
        applies the softmax itself, renormalised without ``none`` when asked), so both see one distribution."""
        if self.cfg.relaxation == "gumbel":
            # As F.gumbel_softmax: g = -log(Exponential(1)); softmax((alpha' + g) / tau) is its soft sample.
            return (alpha_p - torch.empty_like(alpha_p).exponential_().log()) / tau
        return alpha_p / tau

    def op_weights(self, alpha_p: Tensor, tau: float) -> Tensor:
        """The relaxation: softmax(alpha'/tau) or a Gumbel-softmax sample."""
        return torch.softmax(self.relaxed_logits(alpha_p, tau), dim=-1)

    @property
    def latency_weight(self) -> float:
        """The current lambda (adapted when ``adaptive_fps`` is set)."""
        return self.adaptive.weight if self.adaptive is not None else self.cfg.latency_weight

    def latency_term(self, logits: Tensor) -> tuple[Tensor, Tensor]:
        """(weighted latency loss, expected latency in ms) under the op weights ``softmax(logits)``.

        Pass the step's :meth:`relaxed_logits`, so the latency and the forward use one distribution.
        """
        if self.lut is None:
            z = logits.new_zeros(())
            return z, z
        total, _ = self.lut(logits)
        loss = latency_loss(total, form=self.cfg.latency_form, target_ms=self.cfg.target_ms,
                            target_fps=self.cfg.target_fps)
        return self.latency_weight * loss, total

    def _ce(self, logits: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), y, ignore_index=self.ignore_index)

    def check_sync(self, weights: bool = False) -> None:
        """Distributed runs: raises :class:`~gasgnn.distributed.ArchitectureDriftError` unless every rank
        holds rank 0's alpha and guidance parameters (and supernet weights with ``weights``)."""
        arch = [("alpha", self.net.alpha)] + [(f"guide.{n}", p) for n, p in self.guide.named_parameters()]
        dist.check_identical(arch, "architecture parameters")
        if weights:
            dist.check_identical([(n, p) for n, p in self.net.named_parameters() if n != "alpha"], "supernet weights")

    def step(self, batch_w: tuple[Tensor, Tensor], batch_a: tuple[Tensor, Tensor] | None, tau: float) -> float:
        """One bi-level step: the architecture update (when ``batch_a`` is given), then the weights'."""
        self.net.train()
        if batch_a is not None:
            xa, ya = (t.to(self.device, non_blocking=True) for t in batch_a)
            self.a_opt.zero_grad(set_to_none=True)
            # Lean: with the weights frozen, autograd neither computes their gradients nor keeps
            # activations only they need; backward(inputs=...) reaches alpha and the guide alone.
            with frozen(self.w_params), torch.autocast(self.device.type, self.amp_dtype, enabled=self.use_amp):
                # One relaxed distribution for the forward and the latency term (one Gumbel sample).
                rl = self.relaxed_logits(self.alpha_prime(), tau)
                logits = self.run_net(xa, weights=torch.softmax(rl, dim=-1))
            lat_loss, _ = self.latency_term(rl.float())
            loss_a = self._ce(logits, ya) + lat_loss + guide_regularizer(self.guide)  # the guide's own term
            self.check_value(loss_a, "architecture loss")  # the step's one host read of this loss
            self.optim.a_scaler.scale(loss_a).backward(inputs=self.a_params)
            # The mean of the ranks' gradients: every rank takes the same Adam step and alpha stays
            # identical. The latency term is the same on every rank, so averaging keeps it once.
            dist.all_reduce_grads(self.a_params)
            self.optim.a_scaler.step(self.a_opt)
            self.optim.a_scaler.update()
        xw, yw = (t.to(self.device, non_blocking=True) for t in batch_w)
        self.w_opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            w = self.op_weights(self.alpha_prime(), tau)
        with torch.autocast(self.device.type, self.amp_dtype, enabled=self.use_amp):
            loss_w = self._ce(self.run_net(xw, weights=w), yw)
        value = self.check_value(loss_w, "weight loss")
        self.optim.w_scaler.scale(loss_w).backward()
        dist.all_reduce_grads(self.w_params)  # clip and step on the global gradient, identically everywhere
        self.optim.w_scaler.unscale_(self.w_opt)
        nn.utils.clip_grad_norm_(self.w_params, self.cfg.grad_clip)
        self.optim.w_scaler.step(self.w_opt)
        self.optim.w_scaler.update()
        # A finite loss can hide NaN weights or BN statistics. Once per step, after both updates.
        self.check_modules(net=self.net, guide=self.guide)
        self.steps_done += 1
        if dist.is_distributed() and self.cfg.check_sync_every and self.steps_done % self.cfg.check_sync_every == 0:
            self.check_sync()
        return value

    def evaluate(self, loader: Iterable, alpha_p: Tensor | None = None, tau: float = 1.0) -> tuple[float, float]:
        """(loss, mIoU) of the supernet under softmax(alpha'/tau) on ``loader`` (no Gumbel noise)."""
        with torch.no_grad():
            w = torch.softmax((self.alpha_prime() if alpha_p is None else alpha_p) / tau, dim=-1)
        return evaluate_supernet(self.net, w, loader, self.space.num_classes, self.ignore_index, self.device,
                                 self.cfg.steps_per_epoch)

    # ------------------------------------------------------------------------------------------
    def run(self, resume: bool = False, allow_changes: bool = False) -> Genotype:
        """Runs (or resumes) the search; returns the derived genotype. With ``allow_changes`` a resume
        applies settings that differ from the checkpoint's (and records them) instead of refusing."""
        self.allow_changes = allow_changes
        if resume:
            self.resume(map_location=self.device)
            dist.check_same(self.epoch, "the epoch resumed at")
            self.check_sync(weights=True)
            if self.progress:
                print(f"resumed from {self.checkpoint_path} at epoch {self.epoch}")
        main = self.run_dir is not None and dist.is_main()
        if main:
            self._write_static()
        self.start_logging(config=self.settings())
        try:
            if main and resume and self.last_genotype is not None:
                self._write_epoch_files(self.last_genotype)  # a torn file of a killed run is rewritten
            for epoch in range(self.epoch, self.cfg.epochs):
                self._run_epoch(epoch)
            genotype = self.derive(tau=self.tau(max(self.epoch - 1, 0)))
            if main:
                self._write_summary(genotype)
        finally:
            self.close_loggers()
        dist.barrier()
        return genotype

    def _run_epoch(self, epoch: int) -> None:
        c, t0 = self.cfg, time.perf_counter()
        dist.seed_rank(c.seed, epoch)  # distributed: per-rank augmentation, reproducible on resume
        tau = self.tau(epoch)
        arch_on = epoch >= c.warmup_epochs
        wl, al = self.weights_loader(epoch), self.arch_loader(epoch) if arch_on else None
        a_iter = iter(al) if al is not None else None
        total = len(wl) if hasattr(wl, "__len__") else None
        if c.steps_per_epoch is not None:
            total = min(total or c.steps_per_epoch, c.steps_per_epoch)
        bar = tqdm(wl, total=total, desc=f"search {epoch + 1}/{c.epochs}" + ("" if arch_on else " (warm-up)"),
                   disable=not self.progress, leave=False)
        losses = []
        for i, batch_w in enumerate(bar):
            if c.steps_per_epoch is not None and i >= c.steps_per_epoch:
                break
            batch_a = None
            if a_iter is not None:
                try:
                    batch_a = next(a_iter)
                except StopIteration:
                    a_iter = iter(al)
                    batch_a = next(a_iter)
            losses.append(self.step(batch_w, batch_a, tau))
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        bar.close()
        if not losses:  # an epoch without a step would report an untrained genotype as a result
            raise ValueError(f"search epoch {epoch + 1} had no optimisation step: the weights half of the "
                             f"training set gives no batch of --batch-size {c.batch_size}; lower it")
        self.w_sched.step()
        self.epoch = epoch + 1
        self._end_epoch(epoch, float(np.mean(losses)), tau, time.perf_counter() - t0)

    def derive(self, alpha_p: Tensor | None = None, tau: float = 1.0) -> Genotype:
        """The genotype derived from softmax(alpha'/tau) (alpha' the current one when :obj:`None`)."""
        with torch.no_grad():
            alpha_p = self.alpha_prime() if alpha_p is None else alpha_p
            return derive(self.space, (alpha_p / tau).cpu(), graph=self.graph.cpu())

    def _end_epoch(self, epoch: int, train_loss: float, tau: float, seconds: float) -> None:
        if dist.is_distributed():
            self.check_sync(weights=True)
            dist.broadcast_module(self.net, buffers_only=True)  # rank 0's BN statistics: one model to evaluate
        with torch.no_grad():
            alpha_p = self.alpha_prime().float()
            diag = guide_diagnostics(self.guide, self.net.alpha, alpha_p)  # reads this forward's attention
            # The epoch's distribution without noise: softmax(alpha'/tau) (docs/search.md).
            _, lat = self.latency_term(alpha_p / tau)
        val_loss, miou = self.evaluate(self.val_loader(epoch), alpha_p, tau)
        genotype = self.derive(alpha_p, tau)
        prev = self.last_genotype
        changes = sum(a != b for a, b in zip(genotype.cells, prev.cells)) if prev else 0
        self.last_genotype = genotype
        lat_ms = float(lat) if self.table is not None else float("nan")
        row = {
            "epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss, "val_miou": miou,
            "expected_latency_ms": lat_ms, "expected_fps": 1000.0 / lat_ms if lat_ms > 0 else float("nan"),
            "alpha_entropy": alpha_entropy(alpha_p), "latency_weight": self.latency_weight, "tau": tau,
            "seconds": seconds, "genotype_changes": changes, **diag,
        }
        if self.adaptive is not None and epoch >= self.cfg.warmup_epochs and self.table is not None:
            self.adaptive.step(lat_ms)  # lambda for the next epoch; the row keeps the one this epoch used
        self.rows.append(row)
        self.alpha_history.append(alpha_p.detach().cpu().clone())
        if self.progress:
            tqdm.write(
                f"epoch {epoch + 1}/{self.cfg.epochs}: train loss {train_loss:.3f}, val mIoU {100 * miou:.1f}%, "
                f"expected latency {lat_ms:.2f} ms, alpha entropy {row['alpha_entropy']:.3f}, "
                f"attention entropy {diag['guide_attention_entropy']:.3f}, guide update "
                f"{diag['guide_update_ratio']:.3f}, lambda {row['latency_weight']:.3g}, {changes} cells changed, "
                f"{seconds:.0f} s"
            )
        self.check_modules(net=self.net, guide=self.guide)  # never checkpoint a broken model over a good one
        if self.run_dir is not None and dist.is_main():
            lrs = {"lr/weights": self.w_opt.param_groups[0]["lr"], "lr/arch": self.a_opt.param_groups[0]["lr"]}
            self.log_epoch(row, lrs, images=None if self.epoch_images is None else lambda: self.epoch_images(
                alpha=alpha_p, genotype=genotype, space=self.space))
            self._write_epoch_files(genotype)
            self.save_checkpoint()
        dist.barrier()  # the checkpoint of this epoch exists before any rank moves on

    # ------------------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """The settings that change a search's results (compared on resume)."""
        data = dict(self.extra_config.get("data") or {})
        data.pop("workers", None)
        return {"space": self.space.to_dict(), "search": asdict(self.cfg), "data": data,
                "latency_table_sha1": table_sha1(self.table), "threads": cpu_threads(self.device)}

    def checkpoint_settings(self, state: Mapping[str, Any]) -> dict[str, Any]:
        return dict(state.get("settings") or {"space": state.get("space"), "search": state.get("config", {})})

    def check_checkpoint(self, state: Any, path: Path) -> None:
        if not isinstance(state, dict) or not {"net", "space", "w_opt"} <= set(state):
            kind = ("a training checkpoint of 'gasgnn train'" if isinstance(state, dict) and "spec" in state
                    else "unknown content")
            raise ValueError(f"--resume: {path} is not a search checkpoint ({kind}); resume a search from the run "
                             f"directory 'gasgnn search' wrote")

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume."""
        return {
            "epoch": self.epoch, "net": self.net.state_dict(), "guide": self.guide.state_dict(),
            "w_opt": self.w_opt.state_dict(), "w_sched": self.w_sched.state_dict(), "a_opt": self.a_opt.state_dict(),
            "adaptive": self.adaptive.state_dict() if self.adaptive is not None else None,
            "a_scaler": self.optim.a_scaler.state_dict(), "w_scaler": self.optim.w_scaler.state_dict(),
            "rng": rng_state(),
            "alpha_history": self.alpha_history, "rows": self.rows,
            "last_genotype": self.last_genotype.to_dict() if self.last_genotype else None,
            "space": self.space.to_dict(), "config": asdict(self.cfg),
        }

    def load_state_dict(self, st: Mapping[str, Any]) -> None:
        """Restores :meth:`state_dict`."""
        self.net.load_state_dict(st["net"])
        self.guide.load_state_dict(st["guide"])
        self.w_opt.load_state_dict(st["w_opt"])
        self.w_sched.load_state_dict(st["w_sched"])
        self.a_opt.load_state_dict(st["a_opt"])
        if self.adaptive is not None and st.get("adaptive"):
            self.adaptive.load_state_dict(st["adaptive"])
        self.optim.a_scaler.load_state_dict(st["a_scaler"])
        self.optim.w_scaler.load_state_dict(st["w_scaler"])
        set_rng_state(st["rng"])
        self.epoch = st["epoch"]
        self.alpha_history = list(st["alpha_history"])
        self.rows = list(st["rows"])
        self.last_genotype = Genotype.from_dict(st["last_genotype"]) if st["last_genotype"] else None

    def apply_changes(self, changes: list[Change]) -> None:
        """The new learning rates, momentum and weight decay go into the optimisers and the cosine schedule
        (the guide's group keeps its own weight decay), and a new FPS window, factor or initial lambda into
        the adaptive latency weight (whose loaded state restored the checkpoint's)."""
        c = self.cfg
        set_cosine_lr(self.w_opt, self.w_sched, c.w_lr, c.w_lr_min, c.epochs)
        for g in self.w_opt.param_groups:
            g["momentum"], g["weight_decay"] = c.w_momentum, c.w_weight_decay
        for g in self.a_opt.param_groups:
            wd = c.guide_weight_decay if g.get("name") == "guide" else c.a_weight_decay
            g["lr"], g["initial_lr"], g["weight_decay"] = c.a_lr, c.a_lr, wd
        if self.adaptive is not None:
            self.adaptive.fps_window = tuple(float(v) for v in c.adaptive_fps)
            self.adaptive.factor = float(c.adaptive_factor)
            if any(k == "search.latency_weight" for k, _, _ in changes):
                self.adaptive.weight = float(c.latency_weight)

    # ------------------------------------------------------------------------------------------
    def _write_static(self) -> None:
        assert self.run_dir is not None
        self.run_dir.path.mkdir(parents=True, exist_ok=True)
        self.run_dir.write_config({"space": self.space.to_dict(), "search": asdict(self.cfg), **self.extra_config,
                                   "guide": self.cfg.guide, "latency_weight": self.cfg.latency_weight,
                                   "threads": cpu_threads(self.device)})
        if self.table is not None:
            self.run_dir.write_table(self.table)

    def _write_epoch_files(self, genotype: Genotype) -> None:
        """The files the checkpoint can rebuild: the genotype so far and alpha' per epoch."""
        assert self.run_dir is not None
        self.run_dir.write_genotype(genotype)
        if self.alpha_history:
            self.run_dir.write_alpha_history(self.alpha_history)

    def _write_summary(self, genotype: Genotype) -> None:
        assert self.run_dir is not None
        self.run_dir.write_genotype(genotype)
        pred = float(self.table.predict(genotype, head=self.cfg.head)) if self.table is not None else None
        last = self.rows[-1] if self.rows else {}
        summary = {
            "genotype_sha1": genotype_sha1(genotype), "name": self.run_dir.path.name, "guide": self.cfg.guide,
            "latency_weight": last.get("latency_weight", self.cfg.latency_weight),  # the last epoch's (adapted)
            "predicted_latency_ms": pred, "supernet_miou": last.get("val_miou"), "miou": None,
            "measured_latency_ms": None, "epochs": self.epoch,
        }
        # keep numbers later stages added (measured latency, trained mIoU)
        self.run_dir.write_summary(summary, keep=("miou", "measured_latency_ms"))
