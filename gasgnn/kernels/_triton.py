"""Triton kernels for the mixed-op combination and the autograd function that wraps them.

Import this module only through :mod:`gasgnn.kernels` (it imports Triton at import time). Triton
chooses between compiling and interpreting a kernel when it is decorated, so ``TRITON_INTERPRET=1``
must be set before this module is first imported for the kernels to run on CPU tensors.

The ``K`` op outputs are handed to the kernels as a tuple of pointers, so no ``[K, ...]`` stack is ever
materialised: the forward reads every ``y_k`` once and writes ``out`` once; the backward reads
``grad_out`` and every ``y_k`` once, writes every ``grad_y_k`` once, and reduces ``dw_k`` from per-block
partial sums (deterministic: no atomics).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["INTERPRETED", "BLOCK", "mixed_sum_triton", "mixed_sum_forward", "mixed_sum_backward"]

INTERPRETED: bool = os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "yes", "on")
"""Whether the kernels were decorated in interpreter mode (then they run on CPU tensors)."""

BLOCK: int = 1024
"""Elements per program. Tests lower it (``_triton.BLOCK = 16``) to cover many blocks on tiny tensors."""

_ACC = {torch.float64: tl.float64}  # float64 accumulates in float64; everything else in float32


@triton.jit
def _mixed_fwd_kernel(out_ptr, w_ptr, ys, n, K: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    acc = tl.zeros([BLOCK], dtype=ACC)
    for k in tl.static_range(K):
        wk = tl.load(w_ptr + k).to(ACC)
        acc += wk * tl.load(ys[k] + offs, mask=mask, other=0.0).to(ACC)
    tl.store(out_ptr + offs, acc.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _mixed_bwd_kernel(
    g_ptr, w_ptr, ys, gys, part_ptr, n, num_blocks,
    K: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr, NEED_GY: tl.constexpr, NEED_GW: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(ACC)
    for k in tl.static_range(K):
        if NEED_GY:
            wk = tl.load(w_ptr + k).to(ACC)
            tl.store(gys[k] + offs, (wk * g).to(gys[k].dtype.element_ty), mask=mask)
        if NEED_GW:
            y = tl.load(ys[k] + offs, mask=mask, other=0.0).to(ACC)
            # one partial sum per (op, block); the host sums the num_blocks partials of each op
            tl.store(part_ptr + k * num_blocks + pid, tl.sum(g * y, axis=0))


def _layout(t: Tensor) -> torch.memory_format | None:
    """The dense memory format of ``t`` that elementwise kernels may treat as flat, if any."""
    if t.is_contiguous():
        return torch.contiguous_format
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return None


def _flat_inputs(ys: Sequence[Tensor]) -> tuple[tuple[Tensor, ...], torch.memory_format]:
    """All ``ys`` in one dense layout (copies only if their layouts disagree or are strided views)."""
    fmt = _layout(ys[0])
    # Tensors of one shape that are all dense in one memory format line up element by element.
    if fmt is None or any(_layout(y) != fmt for y in ys[1:]):
        return tuple(y.contiguous() for y in ys), torch.contiguous_format
    return tuple(ys), fmt


def _check_device(t: Tensor) -> None:
    if t.device.type == "cpu" and not INTERPRETED:
        raise RuntimeError(
            "gasgnn.kernels: the Triton backend got CPU tensors, but its kernels were compiled for the GPU; "
            "export TRITON_INTERPRET=1 before the first mixed_sum call to run them in Triton's interpreter"
        )


def _grid(n: int) -> tuple[int]:
    return (triton.cdiv(n, BLOCK),)


def mixed_sum_forward(ys: Sequence[Tensor], w: Tensor) -> Tensor:
    """Fused ``sum_k w[k] * ys[k]`` without autograd (one read of every ``y_k``, one write)."""
    ys, _ = _flat_inputs(ys)
    _check_device(ys[0])
    out = torch.empty_like(ys[0])
    n = out.numel()
    if n:
        acc = _ACC.get(out.dtype, tl.float32)
        _mixed_fwd_kernel[_grid(n)](out, w.contiguous(), ys, n, K=len(ys), ACC=acc, BLOCK=BLOCK)
    return out


def mixed_sum_backward(
    grad_out: Tensor, ys: Sequence[Tensor], w: Tensor, need_gy: bool = True, need_gw: bool = True
) -> tuple[list[Tensor] | None, Tensor | None]:
    """Fused backward of :func:`mixed_sum_forward`.

    Returns:
        (list of Tensor or None, Tensor or None): ``grad_y_k = w[k] * grad_out`` for every ``k`` and
        ``grad_w[k] = sum(grad_out * ys[k])``, each :obj:`None` when not requested.
    """
    ys, fmt = _flat_inputs(ys)
    _check_device(ys[0])
    g = grad_out.contiguous(memory_format=fmt)
    K, n = len(ys), g.numel()
    gys = [torch.empty_like(ys[0]) for _ in range(K)] if need_gy else None
    gw = None
    nb = triton.cdiv(n, BLOCK)
    if n == 0:
        return gys, (torch.zeros_like(w) if need_gw else None)
    if need_gy or need_gw:
        acc = _ACC.get(g.dtype, tl.float32)
        acc_dtype = torch.float64 if acc is tl.float64 else torch.float32
        part = torch.empty(K * nb if need_gw else 1, device=g.device, dtype=acc_dtype)
        # Without gys the kernel never touches them; pass ys so the tuple keeps K valid pointers.
        _mixed_bwd_kernel[(nb,)](
            g, w.contiguous(), ys, tuple(gys) if need_gy else ys, part, n, nb,
            K=K, ACC=acc, BLOCK=BLOCK, NEED_GY=need_gy, NEED_GW=need_gw,
        )
        if need_gw:
            gw = part.view(K, nb).sum(1).to(w.dtype)
    return gys, gw


class MixedSumFunction(torch.autograd.Function):
    """Autograd wrapper of the fused kernels: ``out = sum_k w[k] * ys[k]``.

    Saves the ``ys`` only when ``w`` needs a gradient (they are needed for ``dw`` alone). Not twice
    differentiable (the DARTS second-order step uses finite differences, not double backward).
    """

    @staticmethod
    def forward(ctx, w: Tensor, *ys: Tensor) -> Tensor:  # type: ignore[override]
        ctx.need_w = ctx.needs_input_grad[0]
        ctx.save_for_backward(w, *(ys if ctx.need_w else ()))
        ctx.num_ys = len(ys)
        return mixed_sum_forward(ys, w)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        w, *ys = ctx.saved_tensors
        need_y = ctx.needs_input_grad[1:]
        if not ctx.need_w:
            # only grad_y is needed: w[k] * g, no kernel pass over the (unsaved) ys
            gys = [w[k] * grad_out if need_y[k] else None for k in range(ctx.num_ys)]
            return (None, *gys)
        gys, gw = mixed_sum_backward(grad_out, ys, w, need_gy=any(need_y), need_gw=True)
        out_gys = [gys[k] if gys is not None and need_y[k] else None for k in range(ctx.num_ys)]
        return (gw, *out_gys)


def mixed_sum_triton(ys: Sequence[Tensor], w: Tensor) -> Tensor:
    """``sum_k w[k] * ys[k]`` through the fused kernels, differentiable in ``w`` and every ``y_k``."""
    return MixedSumFunction.apply(w, *ys)
