"""The mixed-op combination ``out = sum_k w_k * y_k``: the supernet's hot path.

:func:`mixed_sum` is the one entry point the supernet calls. The reference path here is plain
PyTorch; fused GPU kernels plug in behind the same function.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

__all__ = ["mixed_sum", "mixed_sum_reference"]


def mixed_sum_reference(ys: Sequence[Tensor], w: Tensor) -> Tensor:
    """Reference ``sum_k w[k] * ys[k]``.

    Args:
        ys (sequence of Tensor): ``K`` op outputs of equal shape ``[N, C, H, W]``.
        w (Tensor): Weights ``[K]``.

    Returns:
        Tensor: ``[N, C, H, W]``.
    """
    out = ys[0] * w[0]
    for k in range(1, len(ys)):
        out = out + ys[k] * w[k]
    return out


def mixed_sum(ys: Sequence[Tensor], w: Tensor) -> Tensor:
    """Weighted sum of op outputs, dispatched to the fastest available implementation.

    Args:
        ys (sequence of Tensor): ``K`` op outputs of equal shape ``[N, C, H, W]``.
        w (Tensor): Weights ``[K]``.

    Returns:
        Tensor: ``[N, C, H, W]``.
    """
    return mixed_sum_reference(ys, w)
