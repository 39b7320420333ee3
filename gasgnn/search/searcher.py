"""The GAS search: latency-aware, first-order bi-level optimisation of a cell-independent supernet.

One step updates alpha and the guidance module on the architecture half of the training set (loss =
cross-entropy + lambda * latency term, both computed from alpha' = guide(alpha, ArchGraph)), then the
network weights on the weights half. alpha' is what the supernet, the latency term and the derivation
use alike, under one relaxed distribution per step (softmax(alpha'/tau) or one Gumbel sample).
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from gasgnn import distributed as dist
from gasgnn.genotype import Genotype, derive, op_entropy
from gasgnn.ggm import DIAGNOSTICS, build_guide, guide_regularizer
from gasgnn.latency import LatencyTable, latency_loss
from gasgnn.metrics import ConfusionMatrix
from gasgnn.models import Supernet
from gasgnn.search import resume as _resume
from gasgnn.search.config import SearchConfig
from gasgnn.search.divergence import diverged_message, nonfinite_modules
from gasgnn.search.guidance import adaptive_weight, arch_param_groups, guide_diagnostics, relaxed_logits
from gasgnn.search.rundir import write_summary
from gasgnn.space import SearchSpace
from gasgnn.utils import atomic_torch_save, atomic_write_text, rng_state, seed_everything, set_rng_state, write_json

METRIC_FIELDS = [
    "epoch", "train_loss", "val_loss", "val_miou", "expected_latency_ms", "expected_fps", "alpha_entropy",
    "latency_weight", "tau", "seconds", "genotype_changes", *DIAGNOSTICS,
]


class SearchDivergedError(RuntimeError):
    """The loss became NaN or inf; the last good checkpoint is kept."""


def alpha_entropy(alpha: Tensor) -> float:
    """Mean entropy (nats) of softmax(alpha) over ArchGraph nodes; log(K) is uniform."""
    return float(op_entropy(alpha).mean())


LoaderFactory = Callable[[int], Iterable]
"""``factory(epoch) -> iterable of (images, masks)``; seeded by the epoch so a resumed run sees the
same batches as an uninterrupted one."""


@contextmanager
def _frozen(params: list[Tensor]) -> Iterator[None]:
    """``requires_grad_(False)`` on ``params`` inside the block (the lean architecture step)."""
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)


def _fast_net(net: nn.Module, cfg: SearchConfig, device: torch.device) -> nn.Module:
    """The supernet as the steps call it: with ``cuda_graphs``, compiled with CUDA graphs (CUDA only)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # static shapes: pick the fastest conv algorithms once
    if not cfg.cuda_graphs:
        return net
    if device.type != "cuda":
        raise ValueError(f"SearchConfig.cuda_graphs: needs a CUDA device, got {device}")
    return torch.compile(net, mode="reduce-overhead", dynamic=False)


class Searcher:
    """Runs a GAS search and writes a run directory.

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

    In a ``torch.distributed`` process group each rank runs this loop on its shard of the data, with
    gradients averaged over the ranks, and only rank 0 writes (``docs/distributed.md``).
    """

    def __init__(
        self, space: SearchSpace, config: SearchConfig, weights_loader: LoaderFactory, arch_loader: LoaderFactory,
        val_loader: LoaderFactory | None = None, table: LatencyTable | None = None,
        run_dir: str | Path | None = None, device: str | torch.device = "cpu", ignore_index: int = 255,
        extra_config: dict | None = None, progress: bool = True,
    ) -> None:
        self.space, self.cfg = space, config
        self.device = torch.device(device)
        self.weights_loader, self.arch_loader = weights_loader, arch_loader
        self.val_loader = val_loader or arch_loader
        self.table = table
        self.run_dir = Path(run_dir) if run_dir is not None else None
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
        self.w_opt = torch.optim.SGD(
            self.net.weight_parameters(), lr=config.w_lr, momentum=config.w_momentum,
            weight_decay=config.w_weight_decay,
        )
        self.w_sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.w_opt, config.epochs, eta_min=config.w_lr_min)
        self.w_params = list(self.net.weight_parameters())
        self.a_params = list(self.net.arch_parameters()) + [p for p in self.guide.parameters() if p.requires_grad]
        self.a_opt = torch.optim.Adam(
            arch_param_groups(list(self.net.arch_parameters()), self.guide, config.a_weight_decay,
                              config.guide_weight_decay), lr=config.a_lr, betas=(0.5, 0.999))
        self.adaptive = adaptive_weight(config.adaptive_fps, config.latency_weight, config.adaptive_factor)
        self.use_amp = config.amp and self.device.type == "cuda"
        self.run_net = _fast_net(self.net, config, self.device)
        # bf16 needs no loss scaling (and so no host sync in the scaler); fp16 does.
        self.amp_dtype = torch.bfloat16 if self.use_amp and torch.cuda.is_bf16_supported() else torch.float16
        scale = self.use_amp and self.amp_dtype == torch.float16
        # One scaler per optimiser: the two losses have different scales.
        self.a_scaler = torch.amp.GradScaler("cuda", enabled=scale)
        self.w_scaler = torch.amp.GradScaler("cuda", enabled=scale)
        self.epoch = 0
        self.alpha_history: list[Tensor] = []
        self.rows: list[dict[str, Any]] = []
        self.last_genotype: Genotype | None = None
        self.steps_done = 0  # steps of this process (the periodic drift check)
        self.allow_changes = False  # resume: accept settings that differ from the checkpoint's

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
        """This step's logits: alpha'/tau, or (alpha' + Gumbel noise)/tau (one sample)."""
        return relaxed_logits(alpha_p, tau, self.cfg.relaxation)

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

    def _check(self, loss: Tensor, what: str) -> float:
        # Distributed: judge the ranks' mean, so a NaN anywhere stops all ranks together (not one alone).
        # (reduce_scalar is float(loss) in one process.)
        value = dist.reduce_scalar(loss, "mean")
        if not math.isfinite(value):
            raise self._diverged(f"{what} became {value}")
        return value

    def _check_modules(self) -> None:
        # A finite loss can hide NaN weights or BN statistics. Once per step, after both updates: nothing
        # the step changed goes unchecked, and the modules are not scanned twice.
        bad = nonfinite_modules(net=self.net, guide=self.guide)
        if bad:
            raise self._diverged(f"non-finite values in {', '.join(bad)}")

    def _diverged(self, what: str) -> SearchDivergedError:
        return SearchDivergedError(diverged_message(what, self.epoch + 1, self.run_dir))

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
            with _frozen(self.w_params), torch.autocast(self.device.type, self.amp_dtype, enabled=self.use_amp):
                # One relaxed distribution for the forward and the latency term (one Gumbel sample).
                rl = self.relaxed_logits(self.alpha_prime(), tau)
                logits = self.run_net(xa, weights=torch.softmax(rl, dim=-1))
            lat_loss, _ = self.latency_term(rl.float())
            loss_a = self._ce(logits, ya) + lat_loss + guide_regularizer(self.guide)  # the guide's own term
            self._check(loss_a, "architecture loss")  # the step's one host read of this loss
            self.a_scaler.scale(loss_a).backward(inputs=self.a_params)
            # The mean of the ranks' gradients: every rank takes the same Adam step and alpha stays
            # identical. The latency term is the same on every rank, so averaging keeps it once.
            dist.all_reduce_grads(self.a_params)
            self.a_scaler.step(self.a_opt)
            self.a_scaler.update()
        xw, yw = (t.to(self.device, non_blocking=True) for t in batch_w)
        self.w_opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            w = self.op_weights(self.alpha_prime(), tau)
        with torch.autocast(self.device.type, self.amp_dtype, enabled=self.use_amp):
            loss_w = self._ce(self.run_net(xw, weights=w), yw)
        value = self._check(loss_w, "weight loss")
        self.w_scaler.scale(loss_w).backward()
        dist.all_reduce_grads(self.w_params)  # clip and step on the global gradient, identically everywhere
        self.w_scaler.unscale_(self.w_opt)
        nn.utils.clip_grad_norm_(self.w_params, self.cfg.grad_clip)
        self.w_scaler.step(self.w_opt)
        self.w_scaler.update()
        self._check_modules()
        self.steps_done += 1
        if dist.is_distributed() and self.cfg.check_sync_every and self.steps_done % self.cfg.check_sync_every == 0:
            self.check_sync()
        return value

    @torch.no_grad()
    def evaluate(self, loader: Iterable, alpha_p: Tensor | None = None, tau: float = 1.0) -> tuple[float, float]:
        """(loss, mIoU) of the supernet under softmax(alpha'/tau) on ``loader`` (no Gumbel noise)."""
        self.net.eval()
        # Distributed: the counts live on this rank's device (NCCL reduces GPU tensors only).
        cm = ConfusionMatrix(self.space.num_classes, ignore_index=self.ignore_index,
                             device=self.device if dist.is_distributed() else None)
        w = torch.softmax((self.alpha_prime() if alpha_p is None else alpha_p) / tau, dim=-1)
        tot, n = 0.0, 0
        for i, (x, y) in enumerate(loader):
            if self.cfg.steps_per_epoch is not None and i >= self.cfg.steps_per_epoch:
                break
            x, y = x.to(self.device), y.to(self.device)
            logits = self.net(x, weights=w)
            tot += float(self._ce(logits, y)) * x.size(0)
            n += x.size(0)
            cm.update(logits.argmax(1), y)
        if dist.is_distributed():  # each rank saw its own shard; sum the counts
            cm.all_reduce()
            tot, n = dist.reduce_scalar(tot, "sum"), int(dist.reduce_scalar(n, "sum"))
        return tot / max(n, 1), float(cm.compute()["miou"])

    # ------------------------------------------------------------------------------------------
    def run(self, resume: bool = False, allow_changes: bool = False) -> Genotype:
        """Runs (or resumes) the search; returns the derived genotype. With ``allow_changes`` a resume
        applies settings that differ from the checkpoint's (and records them) instead of refusing."""
        self.allow_changes = allow_changes
        if resume:
            self.load_checkpoint()
            dist.check_same(self.epoch, "the epoch resumed at")
            self.check_sync(weights=True)
        if self.run_dir is not None and dist.is_main():
            self._write_static()
        c = self.cfg
        for epoch in range(self.epoch, c.epochs):
            t0 = time.perf_counter()
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
            self._end_epoch(epoch, float(np.mean(losses)) if losses else float("nan"), tau, time.perf_counter() - t0)
        genotype = self.derive(tau=self.tau(max(self.epoch - 1, 0)))
        if self.run_dir is not None and dist.is_main():
            self._write_summary(genotype)
        dist.barrier()
        return genotype

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
        changes = (
            sum(a != b for a, b in zip(genotype.cells, self.last_genotype.cells)) if self.last_genotype else 0
        )
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
        self._check_modules()  # never checkpoint a broken model over the last good one (evaluation ran since)
        if self.run_dir is not None and dist.is_main():
            genotype.save(self.run_dir / "genotype.json")
            self._write_metrics()
            atomic_torch_save(torch.stack(self.alpha_history), self.run_dir / "alpha_history.pt")
            self.save_checkpoint()
        dist.barrier()  # the checkpoint of this epoch exists before any rank moves on

    # ------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume."""
        return {
            "epoch": self.epoch,
            "net": self.net.state_dict(),
            "guide": self.guide.state_dict(),
            "w_opt": self.w_opt.state_dict(),
            "w_sched": self.w_sched.state_dict(),
            "a_opt": self.a_opt.state_dict(),
            "adaptive": self.adaptive.state_dict() if self.adaptive is not None else None,
            "a_scaler": self.a_scaler.state_dict(),
            "w_scaler": self.w_scaler.state_dict(),
            "rng": rng_state(),
            "alpha_history": self.alpha_history,
            "rows": self.rows,
            "last_genotype": self.last_genotype.to_dict() if self.last_genotype else None,
            "space": self.space.to_dict(),
            "config": asdict(self.cfg),
            "settings": _resume.search_settings(self),
        }

    def load_state_dict(self, st: dict[str, Any]) -> None:
        """Restores :meth:`state_dict`."""
        where = self.run_dir / "checkpoint.pt" if self.run_dir is not None else "checkpoint"
        changes = _resume.resume_search(self, st, where, self.allow_changes)
        self.net.load_state_dict(st["net"])
        self.guide.load_state_dict(st["guide"])
        self.w_opt.load_state_dict(st["w_opt"])
        self.w_sched.load_state_dict(st["w_sched"])
        self.a_opt.load_state_dict(st["a_opt"])
        if self.adaptive is not None and st.get("adaptive"):
            self.adaptive.load_state_dict(st["adaptive"])
        self.a_scaler.load_state_dict(st["a_scaler"])
        self.w_scaler.load_state_dict(st["w_scaler"])
        set_rng_state(st["rng"])
        self.epoch = st["epoch"]
        self.alpha_history = list(st["alpha_history"])
        self.rows = list(st["rows"])
        self.last_genotype = Genotype.from_dict(st["last_genotype"]) if st["last_genotype"] else None
        _resume.apply_search_changes(self, changes)
        if dist.is_main():
            _resume.append_history(self.run_dir, self.epoch, changes, "search")

    def save_checkpoint(self) -> None:
        """Atomic checkpoint into the run directory."""
        assert self.run_dir is not None
        atomic_torch_save(self.state_dict(), self.run_dir / "checkpoint.pt")

    def load_checkpoint(self) -> None:
        """Loads ``run_dir/checkpoint.pt``.

        Raises:
            FileNotFoundError: if there is none (resuming must never start over unnoticed).
        """
        if self.run_dir is None:
            raise ValueError("resume needs a run directory")
        path = self.run_dir / "checkpoint.pt"
        if not path.is_file():
            raise FileNotFoundError(
                f"--resume: no checkpoint {path} to continue (a search writes it after each epoch); start "
                f"again with --overwrite, or omit --resume and give a new --out")
        try:
            st = torch.load(path, map_location=self.device, weights_only=False)
        except Exception as e:  # a torn or foreign file: say which
            raise ValueError(f"checkpoint {path} cannot be read: {e}") from None
        _resume.check_search_checkpoint(st, path)
        self.load_state_dict(st)
        if self.progress:
            print(f"resumed from {path} at epoch {self.epoch}")

    # ------------------------------------------------------------------------------------------
    def _write_static(self) -> None:
        assert self.run_dir is not None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        cfg = {"space": self.space.to_dict(), "search": asdict(self.cfg), **self.extra_config,
               "guide": self.cfg.guide, "latency_weight": self.cfg.latency_weight}
        write_json(self.run_dir / "config.json", cfg)
        if self.table is not None:
            self.table.save(self.run_dir / "latency_table.json")

    def _write_metrics(self) -> None:
        assert self.run_dir is not None
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=METRIC_FIELDS)
        w.writeheader()
        for r in self.rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
        atomic_write_text(self.run_dir / "metrics.csv", buf.getvalue())

    def _write_summary(self, genotype: Genotype) -> None:
        assert self.run_dir is not None
        genotype.save(self.run_dir / "genotype.json")
        pred = float(self.table.predict(genotype, head=self.cfg.head)) if self.table is not None else None
        last = self.rows[-1] if self.rows else {}
        summary = {
            "genotype_sha1": _resume.genotype_sha1(genotype),
            "name": self.run_dir.name, "guide": self.cfg.guide,
            "latency_weight": last.get("latency_weight", self.cfg.latency_weight),  # the last epoch's (adapted) lambda
            "predicted_latency_ms": pred, "supernet_miou": last.get("val_miou"), "miou": None,
            "measured_latency_ms": None, "epochs": self.epoch,
        }
        # keep numbers later stages added (measured latency, trained mIoU)
        write_summary(self.run_dir, summary, keep=("miou", "measured_latency_ms"))
