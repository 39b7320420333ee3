"""The search's settings: :class:`SearchConfig` (every setting of a GAS search, JSON-able)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["SearchConfig", "check_config_values"]


def check_config_values(cfg: Any) -> None:
    """Refuses settings of a :class:`SearchConfig` that cannot give a result: NaN/inf numbers,
    ``steps_per_epoch < 1``, ``batch_size < 1`` (errors name the field and its flag)."""
    def flag(k: str) -> str:
        return f"SearchConfig.{k} (--{k.replace('_', '-')})"

    if cfg.steps_per_epoch is not None and cfg.steps_per_epoch < 1:
        raise ValueError(f"{flag('steps_per_epoch')}: must be >= 1, got {cfg.steps_per_epoch}")
    if cfg.batch_size < 1:
        raise ValueError(f"{flag('batch_size')}: must be >= 1, got {cfg.batch_size}")
    for k, v in asdict(cfg).items():
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{flag(k)}: must be a finite number, got {v}")


@dataclass
class SearchConfig:
    """Settings of a search run; every one is reachable from ``gasgnn search`` (or its ``--config`` file).

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
        a_weight_decay (float): Weight decay of alpha. (default: :obj:`1e-3`)
        guide_weight_decay (float): Weight decay of the guide's parameters (their own Adam group): 0,
            because at alpha's 1e-3 initial scale their gradients are far smaller than any decay
            (docs/ggm.md). (default: :obj:`0.0`)
        grad_clip (float): Max gradient norm of the weights. (default: :obj:`5.0`)
        guide (str): Guidance module: ``'slot_sim'``, ``'gcn_sim'``, ``'gcn_sim_raw'``, ``'gat'``, ``'fc'``,
            ``'none'``, ... or ``'package.module:ClassName'`` (docs/ggm.md). (default: :obj:`"slot_sim"`)
        guide_kwargs (dict): Passed to :func:`gasgnn.ggm.build_guide`. (default: :obj:`{}`)
        latency_weight (float): lambda of the latency term; with ``adaptive_fps`` its initial value.
            (default: :obj:`0.01`)
        adaptive_fps (tuple, optional): ``(lo, hi)`` FPS window of an :class:`~gasgnn.latency.loss.
            AdaptiveLatencyWeight` (FasterSeg-style): after each architecture epoch lambda is multiplied by
            ``adaptive_factor`` when the expected FPS is below ``lo``, divided when above ``hi``.
            (default: :obj:`None`, a fixed lambda)
        adaptive_factor (float): (default: :obj:`1.1`)
        latency_form (str): ``'linear'``, ``'log'`` or ``'target'``. (default: :obj:`"log"`)
        target_ms (float, optional): Latency target for the ``'target'`` form.
        target_fps (float, optional): FPS target for the ``'target'`` form.
        relaxation (str): ``'softmax'`` or ``'gumbel'``. (default: :obj:`"softmax"`)
        tau_start (float): Initial temperature (softmax(alpha'/tau)). (default: :obj:`1.0`)
        tau_end (float): Final temperature (exponential schedule). (default: :obj:`1.0`)
        amp (bool): Mixed precision (CUDA only): bf16 where the GPU supports it (no loss scaling), else
            fp16 with gradient scalers. (default: :obj:`False`)
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
        supernet_impl (str): ``'batched'`` (node-batched cells, :mod:`gasgnn.models.batched`) or
            ``'per_edge'`` (:class:`gasgnn.models.supernet.SearchCell`); the same function. (default: :obj:`"batched"`)
        cuda_graphs (bool): CUDA only: run the supernet through ``torch.compile(mode="reduce-overhead")``
            (CUDA graphs; static shapes, so drop the last partial batch). (default: :obj:`False`)
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
    guide_weight_decay: float = 0.0
    grad_clip: float = 5.0
    guide: str = "slot_sim"
    guide_kwargs: dict = field(default_factory=dict)
    latency_weight: float = 0.01
    adaptive_fps: tuple[float, float] | None = None
    adaptive_factor: float = 1.1
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
    supernet_impl: str = "batched"
    cuda_graphs: bool = False

    def __post_init__(self) -> None:
        if self.supernet_impl not in ("batched", "per_edge"):
            raise ValueError(f"SearchConfig.supernet_impl: 'batched' or 'per_edge', got {self.supernet_impl!r}")
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
        if self.adaptive_fps is not None:
            lo, hi = self.adaptive_fps
            if not 0 < lo <= hi:
                raise ValueError(f"SearchConfig.adaptive_fps: (lo, hi) with 0 < lo <= hi, got {self.adaptive_fps}")
            self.adaptive_fps = (float(lo), float(hi))
        if self.check_sync_every < 0:
            raise ValueError(f"SearchConfig.check_sync_every: must be >= 0, got {self.check_sync_every}")
        check_config_values(self)  # NaN/inf, zero steps: fail now, not as a NaN loss later
