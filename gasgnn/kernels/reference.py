"""The reference definitions of the fused ops, in plain PyTorch: what the Triton kernels are tested against."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["edge_mix_reference", "mixed_sum_reference"]


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


def edge_mix_reference(ys: Sequence[Tensor], shared: Sequence[Tensor], w: Tensor) -> Tensor:
    """Reference per-edge weighted sum over the ``n`` edges leaving one node.

    Edge ``m``'s output is ``sum_k w[m, k] * ys[k][:, m*C:(m+1)*C] + sum_s w[m, K+s] * shared[s]``.

    Args:
        ys (sequence of Tensor): ``K`` edge-batched op outputs ``[N, n*C, H, W]`` (edge-major channels).
        shared (sequence of Tensor): ``S`` op outputs ``[N, C, H, W]`` that are the same on every edge.
        w (Tensor): Weights ``[n, K + S]``.

    Returns:
        Tensor: ``[N, n*C, H, W]``, edge ``m`` in channels ``m*C:(m+1)*C``.
    """
    n = w.shape[0]
    dims = (ys[0] if ys else shared[0]).dim()
    shape = (1, n) + (1,) * (dims - 1)
    terms = [y.unflatten(1, (n, -1)) for y in ys] + [x.unsqueeze(1) for x in shared]
    out = terms[0] * w[:, 0].view(shape)
    for k in range(1, len(terms)):  # addcmul: one pass per term, no product temporaries
        out = torch.addcmul(out, terms[k], w[:, k].view(shape))
    return out.flatten(1, 2)
