"""The reference definitions of the fused ops, in plain PyTorch: what the Triton kernels are tested against.

:func:`mixed_sum_reference` and :func:`edge_mix_reference` are differentiable by autograd (the
``"reference"`` backend calls them directly). :func:`mixed_sum_reference_backward` and
:func:`edge_mix_reference_backward` are their gradients written out, for the custom operators' CPU
implementation (:mod:`gasgnn.kernels.ops`), which runs below autograd.

The weights are cast to the op outputs' dtype, as the Triton kernels store their result: under autocast
bf16 op outputs mixed with fp32 weights stay bf16 on both paths (type promotion would give fp32 here).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "edge_mix_reference", "edge_mix_reference_backward", "mixed_sum_reference", "mixed_sum_reference_backward",
]


def mixed_sum_reference(ys: Sequence[Tensor], w: Tensor) -> Tensor:
    """Reference ``sum_k w[k] * ys[k]``.

    Args:
        ys (sequence of Tensor): ``K`` op outputs of equal shape ``[N, C, H, W]``.
        w (Tensor): Weights ``[K]`` (cast to the dtype of ``ys``).

    Returns:
        Tensor: ``[N, C, H, W]``, the dtype of ``ys``.
    """
    w = w.to(ys[0].dtype)
    out = ys[0] * w[0]
    for k in range(1, len(ys)):
        out = out + ys[k] * w[k]
    return out


def mixed_sum_reference_backward(grad: Tensor, ys: Sequence[Tensor], w: Tensor, k: int
                                 ) -> tuple[list[Tensor], Tensor | None]:
    """The gradients of :func:`mixed_sum_reference`: ``grad_y_k = w[k] * grad`` for the ``k`` ops and, when
    ``ys`` are given, ``grad_w[k] = sum(grad * ys[k])`` (accumulated in float32 or float64), else :obj:`None`."""
    wg = w.to(grad.dtype)
    gys = [grad * wg[j] for j in range(k)]
    if not ys:
        return gys, None
    acc = torch.float64 if grad.dtype == torch.float64 else torch.float32
    gw = torch.stack([(grad.to(acc) * y.to(acc)).sum() for y in ys]).to(w.dtype)
    return gys, gw


def _edge_view(n: int, dims: int) -> tuple[int, ...]:
    return (1, n) + (1,) * (dims - 1)


def edge_mix_reference(ys: Sequence[Tensor], shared: Sequence[Tensor], w: Tensor) -> Tensor:
    """Reference per-edge weighted sum over the ``n`` edges leaving one node.

    Edge ``m``'s output is ``sum_k w[m, k] * ys[k][:, m*C:(m+1)*C] + sum_s w[m, K+s] * shared[s]``.

    Args:
        ys (sequence of Tensor): ``K`` edge-batched op outputs ``[N, n*C, H, W]`` (edge-major channels).
        shared (sequence of Tensor): ``S`` op outputs ``[N, C, H, W]`` that are the same on every edge.
        w (Tensor): Weights ``[n, K + S]`` (cast to the dtype of the op outputs).

    Returns:
        Tensor: ``[N, n*C, H, W]``, edge ``m`` in channels ``m*C:(m+1)*C``.
    """
    n = w.shape[0]
    ref = ys[0] if ys else shared[0]
    w = w.to(ref.dtype)
    shape = _edge_view(n, ref.dim())
    terms = [y.unflatten(1, (n, -1)) for y in ys] + [x.unsqueeze(1) for x in shared]
    out = terms[0] * w[:, 0].view(shape)
    for k in range(1, len(terms)):  # addcmul: one pass per term, no product temporaries
        out = torch.addcmul(out, terms[k], w[:, k].view(shape))
    return out.flatten(1, 2)


def edge_mix_reference_backward(
    grad: Tensor, ys: Sequence[Tensor], shared: Sequence[Tensor], w: Tensor, kb: int, ks: int,
) -> tuple[list[Tensor], list[Tensor], Tensor | None]:
    """The gradients of :func:`edge_mix_reference` with respect to its ``kb`` edge-batched and ``ks``
    shared inputs and, when the inputs are given, ``w`` (else :obj:`None`)."""
    n = w.shape[0]
    shape = _edge_view(n, grad.dim())
    gu = grad.unflatten(1, (n, -1))
    wg = w.to(grad.dtype)
    gys = [(gu * wg[:, k].view(shape)).flatten(1, 2) for k in range(kb)]
    gxs = [(gu * wg[:, kb + s].view(shape)).sum(1) for s in range(ks)]
    if not (ys or shared):
        return gys, gxs, None
    acc = torch.float64 if grad.dtype == torch.float64 else torch.float32
    ga = gu.to(acc)
    dims = [0] + list(range(2, ga.dim()))  # all but the edge dimension
    cols = [(ga * y.unflatten(1, (n, -1)).to(acc)).sum(dims) for y in ys]
    cols += [(ga * x.unsqueeze(1).to(acc)).sum(dims) for x in shared]
    return gys, gxs, torch.stack(cols, dim=1).to(w.dtype)
