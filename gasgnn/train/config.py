"""Training settings: :class:`TrainConfig` (every field is a ``gasgnn train`` option) and the learning-rate
schedule :func:`poly_warmup`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["TrainConfig", "poly_warmup"]


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
