"""The GAS search: latency-aware, first-order bi-level optimisation of a cell-independent supernet.

One step updates alpha and the guidance module on the architecture half of the training set (loss =
cross-entropy + lambda * latency term, both computed from alpha' = guide(alpha, ArchGraph)), then the
network weights on the weights half. alpha' is what the supernet, the latency term and the derivation
use alike.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from gasgnn import distributed as dist
from gasgnn.genotype import derive, op_entropy
from gasgnn.ggm import build_guide
from gasgnn.genotype import Genotype
from gasgnn.latency import LatencyTable, latency_loss
from gasgnn.metrics import ConfusionMatrix
from gasgnn.space import SearchSpace
from gasgnn.models import Supernet
from gasgnn.search import resume as _resume
from gasgnn.search.rundir import write_summary
from gasgnn.search.divergence import check_config_values, diverged_message, nonfinite_modules
from gasgnn.utils import atomic_torch_save, atomic_write_text, rng_state, seed_everything, set_rng_state, write_json

METRIC_FIELDS = [
    "epoch", "train_loss", "val_loss", "val_miou", "expected_latency_ms", "expected_fps", "alpha_entropy",
    "latency_weight", "tau", "seconds", "genotype_changes",
]


class SearchDivergedError(RuntimeError):
    """The loss became NaN or inf; the last good checkpoint is kept."""


@dataclass
class SearchConfig:
    """Settings of a search run (all reachable from ``gasgnn search``).

    Args:
        epochs (int): Search epochs. (default: :obj:`20`)
        warmup_epochs (int): Epochs that train only the weights, with alpha frozen. (default: :obj:`5`)
        batch_size (int): Images per step on each half. (default: :obj:`2`)
        steps_per_epoch (int, optional): Cap on steps per epoch (:obj:`None`: the whole half).
        w_lr (float): SGD learning rate of the weights, cosine-annealed to ``w_lr_min``. (default: :obj:`0.025`)
        w_lr_min (float): (default: :obj:`0.001`)
        w_momentum (float): (default: :obj:`0.9`)
        w_weight_decay (float): (default: :obj:`3e-4`)
        a_lr (float): Adam learning rate of alpha and the guidance module. (default: :obj:`3e-4`)
        a_weight_decay (float): (default: :obj:`1e-3`)
        grad_clip (float): Max gradient norm of the weights. (default: :obj:`5.0`)
        guide (str): Guidance module: ``'gcn_sim'``, ``'gat'``, ``'fc'``, ``'none'``, ... or
            ``'package.module:ClassName'``. (default: :obj:`"gcn_sim"`)
        guide_kwargs (dict): Passed to :func:`gasgnn.ggm.build_guide`. (default: :obj:`{}`)
        latency_weight (float): lambda of the latency term. (default: :obj:`0.01`)
        latency_form (str): ``'linear'``, ``'log'`` or ``'target'``. (default: :obj:`"log"`)
        target_ms (float, optional): Latency target for the ``'target'`` form.
        target_fps (float, optional): FPS target for the ``'target'`` form.
        relaxation (str): ``'softmax'`` or ``'gumbel'``. (default: :obj:`"softmax"`)
        tau_start (float): Initial temperature (softmax(alpha'/tau)). (default: :obj:`1.0`)
        tau_end (float): Final temperature (exponential schedule). (default: :obj:`1.0`)
        amp (bool): Mixed precision (CUDA only). (default: :obj:`False`)
        seed (int): Seed of everything. (default: :obj:`0`)
        deterministic (bool): ``torch.use_deterministic_algorithms``. (default: :obj:`False`)
        num_workers (int): Data loader workers. (default: :obj:`0`)
        head (str): Head of the derived network (for the predicted latency). (default: :obj:`"aspp"`)
        latency_without_none (bool): Take the expected latency over the non-``none`` ops only
            (softmax renormalised without the ``none`` column). The derived network never contains
            ``none``, so otherwise a strong latency weight drains the mass into ``none`` and leaves the
            choice among real ops, hence the derived latency, to chance (docs/results.md shows it).
            (default: :obj:`True`)
        memory (dict): Supernet memory options (:class:`gasgnn.models.supernet.MemoryOptions` fields:
            ``checkpoint``, ``partial_channels``, ``shared_relu``). (default: :obj:`{}`)
        sync_bn (bool): Distributed runs: batch statistics over the global batch (synchronised batch
            norm), so ``W`` ranks of ``batch_size`` images search as one process of ``W * batch_size``.
            (default: :obj:`False`)
        check_sync_every (int): Distributed runs: check every this many steps (and at every epoch end)
            that all ranks hold identical architecture parameters; 0 checks at epoch ends only.
            (default: :obj:`50`)
    """

    epochs: int = 20
    warmup_epochs: int = 5
    batch_size: int = 2
    steps_per_epoch: int | None = None
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    a_lr: float = 3e-4
    a_weight_decay: float = 1e-3
    grad_clip: float = 5.0
    guide: str = "gcn_sim"
    guide_kwargs: dict = field(default_factory=dict)
    latency_weight: float = 0.01
    latency_form: str = "log"
    target_ms: float | None = None
    target_fps: float | None = None
    relaxation: str = "softmax"
    tau_start: float = 1.0
    tau_end: float = 1.0
    amp: bool = False
    seed: int = 0
    deterministic: bool = False
    num_workers: int = 0
    head: str = "aspp"
    latency_without_none: bool = True
    memory: dict = field(default_factory=dict)
    sync_bn: bool = False
    check_sync_every: int = 50

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"SearchConfig.epochs: must be >= 1, got {self.epochs}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError(f"SearchConfig.warmup_epochs: must be in 0..epochs, got {self.warmup_epochs}")
        if self.relaxation not in ("softmax", "gumbel"):
            raise ValueError(f"SearchConfig.relaxation: 'softmax' or 'gumbel', got {self.relaxation!r}")
        if self.latency_form not in ("linear", "log", "target"):
            raise ValueError(f"SearchConfig.latency_form: 'linear', 'log' or 'target', got {self.latency_form!r}")
        if self.latency_weight < 0:
            raise ValueError(f"SearchConfig.latency_weight: must be >= 0, got {self.latency_weight}")
        if self.tau_start <= 0 or self.tau_end <= 0:
            raise ValueError("SearchConfig.tau_start/tau_end: must be > 0")
        if self.check_sync_every < 0:
            raise ValueError(f"SearchConfig.check_sync_every: must be >= 0, got {self.check_sync_every}")
        check_config_values(self)  # NaN/inf, zero steps: fail now, not as a NaN loss later


def alpha_entropy(alpha: Tensor) -> float:
    """Mean entropy (nats) of softmax(alpha) over ArchGraph nodes; log(K) is uniform."""
    return float(op_entropy(alpha).mean())


LoaderFactory = Callable[[int], Iterable]
"""``factory(epoch) -> iterable of (images, masks)``; seeded by the epoch so a resumed run sees the
same batches as an uninterrupted one."""


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
        self.net = Supernet(space, memory=config.memory or None).to(self.device)
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
        self.a_opt = torch.optim.Adam(self.a_params, lr=config.a_lr, betas=(0.5, 0.999),
                                      weight_decay=config.a_weight_decay)
        self.use_amp = config.amp and self.device.type == "cuda"
        # One scaler per optimiser: the two losses have different scales.
        self.a_scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.w_scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
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

    def op_weights(self, alpha_p: Tensor, tau: float) -> Tensor:
        """The relaxation: softmax(alpha'/tau) or a Gumbel-softmax sample."""
        if self.cfg.relaxation == "gumbel":
            return F.gumbel_softmax(alpha_p, tau=tau, hard=False, dim=-1)
        return torch.softmax(alpha_p / tau, dim=-1)

    def latency_term(self, alpha_p: Tensor) -> tuple[Tensor, Tensor]:
        """(weighted latency loss, expected latency in ms) for alpha'."""
        if self.lut is None:
            z = alpha_p.new_zeros(())
            return z, z
        total, _ = self.lut(alpha_p)
        loss = latency_loss(total, form=self.cfg.latency_form, target_ms=self.cfg.target_ms,
                            target_fps=self.cfg.target_fps)
        return self.cfg.latency_weight * loss, total

    def _ce(self, logits: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), y, ignore_index=self.ignore_index)

    def _check(self, loss: Tensor, what: str) -> float:
        # Distributed: judge the ranks' mean, so a NaN anywhere stops all ranks together (not one alone).
        # (reduce_scalar is float(loss) in one process.)
        value = dist.reduce_scalar(loss, "mean")
        if not math.isfinite(value):
            raise self._diverged(f"{what} became {value}")
        bad = nonfinite_modules(net=self.net, guide=self.guide)  # a finite loss can hide NaN weights/BN stats
        if bad:
            raise self._diverged(f"non-finite values in {', '.join(bad)}")
        return value

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
            with torch.autocast(self.device.type, enabled=self.use_amp):
                alpha_p = self.alpha_prime()
                logits = self.net(xa, weights=self.op_weights(alpha_p, tau))
            lat_loss, _ = self.latency_term(alpha_p.float())
            loss_a = self._ce(logits, ya) + lat_loss
            self._check(loss_a, "architecture loss")
            self.a_scaler.scale(loss_a).backward()
            # The mean of the ranks' gradients: every rank takes the same Adam step and alpha stays
            # identical. The latency term is the same on every rank, so averaging keeps it once.
            dist.all_reduce_grads(self.a_params)
            self.a_scaler.step(self.a_opt)
            self.a_scaler.update()
        xw, yw = (t.to(self.device, non_blocking=True) for t in batch_w)
        self.w_opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            w = self.op_weights(self.alpha_prime(), tau)
        with torch.autocast(self.device.type, enabled=self.use_amp):
            loss_w = self._ce(self.net(xw, weights=w), yw)
        value = self._check(loss_w, "weight loss")
        self.w_scaler.scale(loss_w).backward()
        dist.all_reduce_grads(self.w_params)  # clip and step on the global gradient, identically everywhere
        self.w_scaler.unscale_(self.w_opt)
        nn.utils.clip_grad_norm_(self.w_params, self.cfg.grad_clip)
        self.w_scaler.step(self.w_opt)
        self.w_scaler.update()
        self.steps_done += 1
        if dist.is_distributed() and self.cfg.check_sync_every and self.steps_done % self.cfg.check_sync_every == 0:
            self.check_sync()
        return value

    @torch.no_grad()
    def evaluate(self, loader: Iterable, alpha_p: Tensor | None = None) -> tuple[float, float]:
        """(loss, mIoU) of the supernet under softmax(alpha') on ``loader``."""
        self.net.eval()
        # Distributed: the counts live on this rank's device (NCCL reduces GPU tensors only).
        cm = ConfusionMatrix(self.space.num_classes, ignore_index=self.ignore_index,
                             device=self.device if dist.is_distributed() else None)
        w = torch.softmax(self.alpha_prime() if alpha_p is None else alpha_p, dim=-1)
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
        genotype = self.derive()
        if self.run_dir is not None and dist.is_main():
            self._write_summary(genotype)
        dist.barrier()
        return genotype

    def derive(self, alpha_p: Tensor | None = None) -> Genotype:
        """The genotype derived from alpha' (the current one when :obj:`None`)."""
        with torch.no_grad():
            alpha_p = self.alpha_prime() if alpha_p is None else alpha_p
            return derive(self.space, alpha_p.cpu(), graph=self.graph.cpu())

    def _end_epoch(self, epoch: int, train_loss: float, tau: float, seconds: float) -> None:
        if dist.is_distributed():
            self.check_sync(weights=True)
            dist.broadcast_module(self.net, buffers_only=True)  # rank 0's BN statistics: one model to evaluate
        with torch.no_grad():
            alpha_p = self.alpha_prime().float()
            _, lat = self.latency_term(alpha_p)
        val_loss, miou = self.evaluate(self.val_loader(epoch), alpha_p)
        genotype = self.derive(alpha_p)
        changes = (
            sum(a != b for a, b in zip(genotype.cells, self.last_genotype.cells)) if self.last_genotype else 0
        )
        self.last_genotype = genotype
        lat_ms = float(lat) if self.table is not None else float("nan")
        row = {
            "epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss, "val_miou": miou,
            "expected_latency_ms": lat_ms, "expected_fps": 1000.0 / lat_ms if lat_ms > 0 else float("nan"),
            "alpha_entropy": alpha_entropy(alpha_p), "latency_weight": self.cfg.latency_weight, "tau": tau,
            "seconds": seconds, "genotype_changes": changes,
        }
        self.rows.append(row)
        self.alpha_history.append(alpha_p.detach().cpu().clone())
        if self.progress:
            tqdm.write(
                f"epoch {epoch + 1}/{self.cfg.epochs}: train loss {train_loss:.3f}, val mIoU {100 * miou:.1f}%, "
                f"expected latency {lat_ms:.2f} ms, alpha entropy {row['alpha_entropy']:.3f}, "
                f"{changes} cells changed, {seconds:.0f} s"
            )
        bad = nonfinite_modules(net=self.net, guide=self.guide)
        if bad:  # never checkpoint a broken model over the last good one
            raise self._diverged(f"non-finite values in {', '.join(bad)}")
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
        """Loads ``run_dir/checkpoint.pt`` (a missing one starts from scratch)."""
        if self.run_dir is None:
            raise ValueError("resume needs a run directory")
        path = self.run_dir / "checkpoint.pt"
        if not path.is_file():
            if self.progress:
                print(f"no checkpoint at {path}; starting from scratch")
            return
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
            "name": self.run_dir.name, "guide": self.cfg.guide, "latency_weight": self.cfg.latency_weight,
            "predicted_latency_ms": pred, "supernet_miou": last.get("val_miou"), "miou": None,
            "measured_latency_ms": None, "epochs": self.epoch,
        }
        # keep numbers later stages added (measured latency, trained mIoU)
        write_summary(self.run_dir, summary, keep=("miou", "measured_latency_ms"))
