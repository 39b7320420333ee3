"""The fused mixed ops as PyTorch custom operators (``torch.library``), so ``torch.compile`` traces a
supernet that uses them with no graph break.

Four operators, each with a CPU implementation (the reference, or Triton's interpreter when
``TRITON_INTERPRET=1``, as in CI), a CUDA implementation that launches the Triton kernels, and a fake
implementation that gives the output's shape, dtype and strides for tracing:

- ``gasgnn::mixed_sum(ys, w)`` and its backward ``gasgnn::mixed_sum_backward``;
- ``gasgnn::edge_mix(ys, shared, w)`` and its backward ``gasgnn::edge_mix_backward``.

Autograd is registered on the forward operators and calls the backward operators, so both passes stay
opaque nodes in a compiled graph (AOTAutograd traces the backward through the fake implementations).
The op outputs are kept for the backward only when ``w`` needs a gradient (they are needed for ``dw``
alone). :func:`gasgnn.kernels.mixed_sum` and :func:`gasgnn.kernels.edge_mix` call these operators when
the Triton backend is selected; the ``"reference"`` backend stays plain PyTorch autograd, the oracle.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch
from torch import Tensor

from gasgnn.kernels.layout import common_format, dense_format, edge_mix_shape
from gasgnn.kernels.reference import (
    edge_mix_reference,
    edge_mix_reference_backward,
    mixed_sum_reference,
    mixed_sum_reference_backward,
)

__all__ = ["edge_mix_op", "interpreted", "mixed_sum_op", "triton_available"]


_TRITON_OK: bool | None = None  # a plain global, not lru_cache: torch.compile reads it without tracing a cache


def triton_available() -> bool:
    """Whether Triton >= 3.2 (tuple kernel arguments) can be imported."""
    global _TRITON_OK
    if _TRITON_OK is None:
        _TRITON_OK = False
        if importlib.util.find_spec("triton") is not None:
            try:
                import triton
            except Exception:  # a broken install must not break the package
                triton = None
            if triton is not None:
                major, minor = (int(p) for p in triton.__version__.split(".")[:2])
                _TRITON_OK = (major, minor) >= (3, 2)
    return _TRITON_OK


def interpreted() -> bool:
    """Whether the Triton kernels run in Triton's interpreter (``TRITON_INTERPRET=1`` when they were
    first imported), so the CPU implementations run them on CPU tensors instead of the reference."""
    if not triton_available():
        return False
    from gasgnn.kernels import triton_kernels

    return triton_kernels.INTERPRETED


def _kernels() -> Any:
    from gasgnn.kernels import triton_kernels  # imports Triton on first use only

    return triton_kernels


def _no_gw(w: Tensor) -> Tensor:
    return w.new_empty(0)  # the backward's "no dw" (an operator returns tensors, not None)


# ----------------------------------------------------------------------------------------------
# mixed_sum: sum_k w[k] * ys[k]


@torch.library.custom_op("gasgnn::mixed_sum", mutates_args=())
def mixed_sum_op(ys: list[Tensor], w: Tensor) -> Tensor:
    """``sum_k w[k] * ys[k]`` on the CPU: the reference (Triton's interpreter when it is on)."""
    if interpreted():
        return _kernels().mixed_sum_forward(ys, w)
    return mixed_sum_reference(ys, w).contiguous(memory_format=common_format(ys))


@mixed_sum_op.register_kernel("cuda")
def _mixed_sum_cuda(ys: list[Tensor], w: Tensor) -> Tensor:
    return _kernels().mixed_sum_forward(ys, w)


@mixed_sum_op.register_fake
def _mixed_sum_fake(ys: list[Tensor], w: Tensor) -> Tensor:
    return torch.empty_like(ys[0], memory_format=common_format(ys))


@torch.library.custom_op("gasgnn::mixed_sum_backward", mutates_args=())
def mixed_sum_backward_op(grad: Tensor, ys: list[Tensor], w: Tensor, k: int) -> tuple[list[Tensor], Tensor]:
    """The gradients of ``mixed_sum`` for its ``k`` inputs and, when ``ys`` are given, ``w`` (else an empty
    tensor)."""
    if interpreted():
        gys, gw = _kernels().mixed_sum_backward(grad, ys, w, k)
    else:
        gys, gw = mixed_sum_reference_backward(grad, ys, w, k)
        fmt = _grad_format(grad, ys)
        gys = [g.contiguous(memory_format=fmt) for g in gys]
    return gys, (gw if gw is not None else _no_gw(w))


@mixed_sum_backward_op.register_kernel("cuda")
def _mixed_sum_backward_cuda(grad: Tensor, ys: list[Tensor], w: Tensor, k: int) -> tuple[list[Tensor], Tensor]:
    gys, gw = _kernels().mixed_sum_backward(grad, ys, w, k)
    return gys, (gw if gw is not None else _no_gw(w))


def _grad_format(grad: Tensor, ys: list[Tensor]) -> torch.memory_format:
    return common_format(ys) if ys else (dense_format(grad) or torch.contiguous_format)


@mixed_sum_backward_op.register_fake
def _mixed_sum_backward_fake(grad: Tensor, ys: list[Tensor], w: Tensor, k: int) -> tuple[list[Tensor], Tensor]:
    fmt = _grad_format(grad, ys)
    return [torch.empty_like(grad, memory_format=fmt) for _ in range(k)], (torch.empty_like(w) if ys else _no_gw(w))


def _mixed_sum_setup(ctx: Any, inputs: tuple, output: Tensor) -> None:
    ys, w = inputs
    ctx.k, ctx.need_w = len(ys), w.requires_grad
    ctx.save_for_backward(w, *(ys if ctx.need_w else ()))


def _mixed_sum_backward(ctx: Any, grad: Tensor) -> tuple[list[Tensor], Tensor | None]:
    w, *ys = ctx.saved_tensors
    gys, gw = torch.ops.gasgnn.mixed_sum_backward(grad, ys, w, ctx.k)
    return gys, (gw if ctx.need_w else None)


mixed_sum_op.register_autograd(_mixed_sum_backward, setup_context=_mixed_sum_setup)


# ----------------------------------------------------------------------------------------------
# edge_mix: the node-batched combination (n edges, K edge-batched and S edge-shared op outputs)


@torch.library.custom_op("gasgnn::edge_mix", mutates_args=())
def edge_mix_op(ys: list[Tensor], shared: list[Tensor], w: Tensor) -> Tensor:
    """:func:`~gasgnn.kernels.edge_mix_reference` on the CPU (Triton's interpreter when it is on)."""
    if interpreted():
        return _kernels().edge_mix_forward(ys, shared, w)
    return edge_mix_reference(ys, shared, w).contiguous()


@edge_mix_op.register_kernel("cuda")
def _edge_mix_cuda(ys: list[Tensor], shared: list[Tensor], w: Tensor) -> Tensor:
    return _kernels().edge_mix_forward(ys, shared, w)


@edge_mix_op.register_fake
def _edge_mix_fake(ys: list[Tensor], shared: list[Tensor], w: Tensor) -> Tensor:
    ref = (ys or shared)[0]
    return ref.new_empty(edge_mix_shape(ys, shared, w.shape[0]))


@torch.library.custom_op("gasgnn::edge_mix_backward", mutates_args=())
def edge_mix_backward_op(grad: Tensor, ys: list[Tensor], shared: list[Tensor], w: Tensor, kb: int, ks: int
                         ) -> tuple[list[Tensor], list[Tensor], Tensor]:
    """The gradients of ``edge_mix`` for its ``kb`` edge-batched and ``ks`` shared inputs and, when the
    inputs are given, ``w`` (else an empty tensor)."""
    impl = _kernels().edge_mix_backward if interpreted() else edge_mix_reference_backward
    gys, gxs, gw = impl(grad, ys, shared, w, kb, ks)
    return [g.contiguous() for g in gys], [g.contiguous() for g in gxs], (gw if gw is not None else _no_gw(w))


@edge_mix_backward_op.register_kernel("cuda")
def _edge_mix_backward_cuda(grad: Tensor, ys: list[Tensor], shared: list[Tensor], w: Tensor, kb: int, ks: int
                            ) -> tuple[list[Tensor], list[Tensor], Tensor]:
    gys, gxs, gw = _kernels().edge_mix_backward(grad, ys, shared, w, kb, ks)
    return gys, gxs, (gw if gw is not None else _no_gw(w))


@edge_mix_backward_op.register_fake
def _edge_mix_backward_fake(grad: Tensor, ys: list[Tensor], shared: list[Tensor], w: Tensor, kb: int, ks: int
                            ) -> tuple[list[Tensor], list[Tensor], Tensor]:
    n = w.shape[0]
    shared_shape = (grad.shape[0], grad.shape[1] // n, *grad.shape[2:])
    gw = torch.empty_like(w) if (ys or shared) else _no_gw(w)
    return ([torch.empty_like(grad, memory_format=torch.contiguous_format) for _ in range(kb)],
            [grad.new_empty(shared_shape) for _ in range(ks)], gw)


def _edge_mix_setup(ctx: Any, inputs: tuple, output: Tensor) -> None:
    ys, shared, w = inputs
    ctx.kb, ctx.ks, ctx.need_w = len(ys), len(shared), w.requires_grad
    ctx.save_for_backward(w, *(ys if ctx.need_w else ()), *(shared if ctx.need_w else ()))


def _edge_mix_backward(ctx: Any, grad: Tensor) -> tuple[list[Tensor], list[Tensor], Tensor | None]:
    w, *ts = ctx.saved_tensors
    ys, shared = (ts[: ctx.kb], ts[ctx.kb:]) if ctx.need_w else ((), ())
    gys, gxs, gw = torch.ops.gasgnn.edge_mix_backward(grad, list(ys), list(shared), w, ctx.kb, ctx.ks)
    return gys, gxs, (gw if ctx.need_w else None)


edge_mix_op.register_autograd(_edge_mix_backward, setup_context=_edge_mix_setup)
