"""Triton kernels of the fused mixed ops and their launchers (no autograd here).

Import this module only through :mod:`gasgnn.kernels` (it imports Triton at import time). Triton
chooses between compiling and interpreting a kernel when it is decorated, so ``TRITON_INTERPRET=1``
must be set before this module is first imported for the kernels to run on CPU tensors.

The launchers are the device implementations of the custom operators in :mod:`gasgnn.kernels.ops`, which
own autograd and the fake (tracing) implementations: ``torch.compile`` sees each op as one opaque node,
so the tuples of tensor pointers the kernels take never reach TorchDynamo.

The ``K`` op outputs are handed to the kernels as a tuple of pointers, so no ``[K, ...]`` stack is ever
materialised: the forward reads every ``y_k`` once and writes ``out`` once; the backward reads
``grad_out`` and every ``y_k`` once, writes every ``grad_y_k`` once, and reduces ``dw_k`` from per-block
partial sums (deterministic: no atomics). Every launch runs on the tensors' own device (a CUDA device
guard), not on the current one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import triton
import triton.language as tl
from torch import Tensor

from gasgnn.kernels.layout import common_format, dense_format, edge_mix_shape, on_device

__all__ = [
    "BLOCK", "INTERPRETED", "edge_mix_backward", "edge_mix_forward", "mixed_sum_backward", "mixed_sum_forward",
]

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


def _flat(ts: Sequence[Tensor], fmt: torch.memory_format) -> tuple[Tensor, ...]:
    return tuple(t.contiguous(memory_format=fmt) for t in ts)  # no copy when already in fmt


def _check_device(t: Tensor) -> None:
    if t.device.type == "cpu" and not INTERPRETED:
        raise RuntimeError(
            "gasgnn.kernels: the Triton backend got CPU tensors, but its kernels were compiled for the GPU; "
            "export TRITON_INTERPRET=1 before gasgnn.kernels first uses Triton to run them in Triton's interpreter"
        )


def _grid(n: int) -> tuple[int]:
    return (triton.cdiv(n, BLOCK),)


def _acc(dtype: torch.dtype) -> tuple[tl.dtype, torch.dtype]:
    acc = _ACC.get(dtype, tl.float32)
    return acc, (torch.float64 if acc is tl.float64 else torch.float32)


def mixed_sum_forward(ys: Sequence[Tensor], w: Tensor) -> Tensor:
    """Fused ``sum_k w[k] * ys[k]`` (one read of every ``y_k``, one write), in the layout
    :func:`~gasgnn.kernels.layout.common_format` of the ``ys``; the dtype of ``ys``."""
    fmt = common_format(ys)
    ys = _flat(ys, fmt)
    _check_device(ys[0])
    out = torch.empty_like(ys[0], memory_format=fmt)
    n = out.numel()
    if n:
        with on_device(out):
            _mixed_fwd_kernel[_grid(n)](out, w.contiguous(), ys, n, K=len(ys), ACC=_acc(out.dtype)[0], BLOCK=BLOCK)
    return out


def mixed_sum_backward(grad: Tensor, ys: Sequence[Tensor], w: Tensor, k: int) -> tuple[list[Tensor], Tensor | None]:
    """Fused backward of :func:`mixed_sum_forward`: ``grad_y_k = w[k] * grad`` for all ``k`` ops and, when
    the ``ys`` are given, ``grad_w[k] = sum(grad * ys[k])`` (else :obj:`None`: ``w`` needs no gradient and
    the ``ys`` were not kept)."""
    need_gw = len(ys) > 0
    fmt = common_format(ys) if need_gw else (dense_format(grad) or torch.contiguous_format)
    ys = _flat(ys, fmt)
    g = grad.contiguous(memory_format=fmt)
    _check_device(g)
    n = g.numel()
    gys = [torch.empty_like(g, memory_format=fmt) for _ in range(k)]
    if n == 0:
        return gys, (torch.zeros_like(w) if need_gw else None)
    nb = triton.cdiv(n, BLOCK)
    acc, acc_dtype = _acc(g.dtype)
    part = torch.empty(k * nb if need_gw else 1, device=g.device, dtype=acc_dtype)
    with on_device(g):
        # Without ys the kernel never reads them; pass gys so the tuple keeps k valid pointers.
        _mixed_bwd_kernel[(nb,)](g, w.contiguous(), ys if need_gw else tuple(gys), tuple(gys), part, n, nb,
                                 K=k, ACC=acc, BLOCK=BLOCK, NEED_GY=True, NEED_GW=need_gw)
    return gys, (part.view(k, nb).sum(1).to(w.dtype) if need_gw else None)


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


def edge_mix_forward(ys: Sequence[Tensor], shared: Sequence[Tensor], w: Tensor) -> Tensor:
    """Fused :func:`gasgnn.kernels.edge_mix_reference` (contiguous output, the dtype of the inputs)."""
    ys, xs = _flat(ys, torch.contiguous_format), _flat(shared, torch.contiguous_format)
    n = w.shape[0]
    out = torch.empty(edge_mix_shape(ys, xs, n), device=w.device, dtype=(ys or xs)[0].dtype)
    _check_device(out)
    inner = out[0].numel() // n
    total = out.shape[0] * inner
    if total:
        with on_device(out):
            _edge_fwd_kernel[_grid(total)](
                out, w.contiguous(), _or_dummy(ys, out), _or_dummy(xs, out), total, inner,
                NE=n, KB=len(ys), KS=len(xs), ACC=_acc(out.dtype)[0], BLOCK=BLOCK,
            )
    return out


def edge_mix_backward(
    grad: Tensor, ys: Sequence[Tensor], shared: Sequence[Tensor], w: Tensor, kb: int, ks: int,
) -> tuple[list[Tensor], list[Tensor], Tensor | None]:
    """Fused backward of :func:`edge_mix_forward`: the gradients of the ``kb`` edge-batched and the ``ks``
    shared inputs and, when the inputs are given, of ``w`` (else :obj:`None`: ``w`` needs no gradient and
    the inputs were not kept)."""
    need_gw = bool(ys or shared)
    g = grad.contiguous()
    _check_device(g)
    n = w.shape[0]
    N, inner = g.shape[0], g[0].numel() // n
    shared_shape = (N, g.shape[1] // n, *g.shape[2:])
    gys = [torch.empty_like(g) for _ in range(kb)]
    gxs = [torch.empty(shared_shape, device=g.device, dtype=g.dtype) for _ in range(ks)]
    ys, xs = (_flat(ys, torch.contiguous_format), _flat(shared, torch.contiguous_format)) if need_gw else (gys, gxs)
    total = N * inner
    nb = triton.cdiv(total, BLOCK)
    acc, acc_dtype = _acc(g.dtype)
    part = torch.zeros(w.numel() * nb if need_gw else 1, device=g.device, dtype=acc_dtype)
    if total:
        with on_device(g):
            _edge_bwd_kernel[(nb,)](
                g, w.contiguous(), _or_dummy(ys, g), _or_dummy(xs, g), _or_dummy(gys, g), _or_dummy(gxs, g),
                part, total, inner, nb, NE=n, KB=kb, KS=ks, ACC=acc, BLOCK=BLOCK, NEED_GW=need_gw,
            )
    return gys, gxs, (part.view(*w.shape, nb).sum(-1).to(w.dtype) if need_gw else None)
