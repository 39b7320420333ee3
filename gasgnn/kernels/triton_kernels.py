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


# ----------------------------------------------------------------------------------------------
# edge_mix: the node-batched combination. Edge-batched inputs ys[k] are [N, n, inner] (edge-major
# channels), shared inputs xs[s] are [N, inner]; w is [n, KB + KS]. A program handles BLOCK positions
# q = b * inner + r of one edge slot and loops over the n edges, so a shared input is read once per
# program for all edges and its gradient is reduced over the edges without atomics.


@triton.jit
def _edge_fwd_kernel(
    out_ptr, w_ptr, ys, xs, total, inner,
    NE: tl.constexpr, KB: tl.constexpr, KS: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    q = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = q < total
    off0 = (q // inner) * NE * inner + q % inner
    for m in tl.static_range(NE):
        off = off0 + m * inner
        acc = tl.zeros([BLOCK], dtype=ACC)
        for k in tl.static_range(KB):
            acc += tl.load(w_ptr + m * (KB + KS) + k).to(ACC) * tl.load(ys[k] + off, mask=mask, other=0.0).to(ACC)
        for s in tl.static_range(KS):
            wk = tl.load(w_ptr + m * (KB + KS) + KB + s).to(ACC)
            acc += wk * tl.load(xs[s] + q, mask=mask, other=0.0).to(ACC)
        tl.store(out_ptr + off, acc.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _edge_bwd_kernel(
    g_ptr, w_ptr, ys, xs, gys, gxs, part_ptr, total, inner, num_blocks,
    NE: tl.constexpr, KB: tl.constexpr, KS: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr,
    NEED_GW: tl.constexpr,
):
    pid = tl.program_id(0)
    q = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = q < total
    off0 = (q // inner) * NE * inner + q % inner
    for m in tl.static_range(NE):
        off = off0 + m * inner
        g = tl.load(g_ptr + off, mask=mask, other=0.0).to(ACC)
        for k in tl.static_range(KB):
            wk = tl.load(w_ptr + m * (KB + KS) + k).to(ACC)
            tl.store(gys[k] + off, (wk * g).to(gys[k].dtype.element_ty), mask=mask)
            if NEED_GW:
                y = tl.load(ys[k] + off, mask=mask, other=0.0).to(ACC)
                tl.store(part_ptr + (m * (KB + KS) + k) * num_blocks + pid, tl.sum(g * y, axis=0))
    for s in tl.static_range(KS):
        x = tl.load(xs[s] + q, mask=mask, other=0.0).to(ACC)
        gx = tl.zeros([BLOCK], dtype=ACC)
        for m in tl.static_range(NE):
            g = tl.load(g_ptr + off0 + m * inner, mask=mask, other=0.0).to(ACC)
            wk = tl.load(w_ptr + m * (KB + KS) + KB + s).to(ACC)
            gx += wk * g
            if NEED_GW:
                tl.store(part_ptr + (m * (KB + KS) + KB + s) * num_blocks + pid, tl.sum(g * x, axis=0))
        tl.store(gxs[s] + q, gx.to(gxs[s].dtype.element_ty), mask=mask)


def _or_dummy(ts: Sequence[Tensor], dummy: Tensor) -> tuple[Tensor, ...]:
    # Triton needs a non-empty tuple; with KB or KS = 0 the kernel never touches the dummy.
    return tuple(ts) if ts else (dummy,)


class EdgeMixFunction(torch.autograd.Function):
    """Autograd wrapper of the edge_mix kernels (inputs: ``w``, the count ``KB`` of edge-batched
    tensors, then the ``KB`` edge-batched and the shared tensors, all made contiguous)."""

    @staticmethod
    def forward(ctx, w: Tensor, kb: int, *ts: Tensor) -> Tensor:  # type: ignore[override]
        ts = tuple(t.contiguous() for t in ts)
        ys, xs = ts[:kb], ts[kb:]
        n = w.shape[0]
        ref = ys[0] if ys else xs[0]
        N = ref.shape[0]
        inner = ref[0].numel() // (n if ys else 1)
        shape = (N, n * (ref.shape[1] // (n if ys else 1)), *ref.shape[2:])
        out = torch.empty(shape, device=ref.device, dtype=ref.dtype)
        _check_device(out)
        total = N * inner
        ctx.kb, ctx.n, ctx.inner, ctx.need_w = kb, n, inner, ctx.needs_input_grad[0]
        ctx.save_for_backward(w, *(ts if ctx.need_w else ()))
        ctx.shapes = [t.shape for t in ts]
        if total:
            acc = _ACC.get(out.dtype, tl.float32)
            _edge_fwd_kernel[_grid(total)](
                out, w.contiguous(), _or_dummy(ys, out), _or_dummy(xs, out), total, inner,
                NE=n, KB=kb, KS=len(xs), ACC=acc, BLOCK=BLOCK,
            )
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        w, *ts = ctx.saved_tensors
        g = grad_out.contiguous()
        kb, n, inner = ctx.kb, ctx.n, ctx.inner
        N = g.shape[0]
        gys = [torch.empty(s, device=g.device, dtype=g.dtype) for s in ctx.shapes[:kb]]
        gxs = [torch.empty(s, device=g.device, dtype=g.dtype) for s in ctx.shapes[kb:]]
        ys, xs = (ts[:kb], ts[kb:]) if ctx.need_w else (gys, gxs)  # unread without NEED_GW
        total, nb = N * inner, triton.cdiv(N * inner, BLOCK)
        acc = _ACC.get(g.dtype, tl.float32)
        acc_dtype = torch.float64 if acc is tl.float64 else torch.float32
        part = torch.zeros(w.numel() * nb if ctx.need_w else 1, device=g.device, dtype=acc_dtype)
        if total:
            _edge_bwd_kernel[(nb,)](
                g, w.contiguous(), _or_dummy(ys, g), _or_dummy(xs, g), _or_dummy(gys, g), _or_dummy(gxs, g),
                part, total, inner, nb, NE=n, KB=kb, KS=len(gxs), ACC=acc, BLOCK=BLOCK, NEED_GW=ctx.need_w,
            )
        gw = part.view(*w.shape, nb).sum(-1).to(w.dtype) if ctx.need_w else None
        return (gw, None, *gys, *gxs)


def edge_mix_triton(ys: Sequence[Tensor], shared: Sequence[Tensor], w: Tensor) -> Tensor:
    """:func:`gasgnn.kernels.edge_mix_reference` through the fused kernels."""
    return EdgeMixFunction.apply(w, len(ys), *ys, *shared)
