"""Shapes and memory layouts of the fused ops' outputs (shared by the real and the fake, tracing,
implementations so that both give tensors of the same shape, dtype and strides), and the device guard of
a launch."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import Tensor

__all__ = ["common_format", "dense_format", "edge_mix_shape", "on_device"]


def dense_format(t: Tensor) -> torch.memory_format | None:
    """The dense memory format of ``t`` that elementwise kernels may treat as flat, if any."""
    if t.is_contiguous():
        return torch.contiguous_format
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return None


def common_format(ts: Sequence[Tensor]) -> torch.memory_format:
    """The one dense layout all of ``ts`` share, else the contiguous one (they are then copied into it)."""
    fmt = dense_format(ts[0])
    # Tensors of one shape that are all dense in one memory format line up element by element.
    if fmt is None or any(dense_format(t) != fmt for t in ts[1:]):
        return torch.contiguous_format
    return fmt


def edge_mix_shape(ys: Sequence[Tensor], shared: Sequence[Tensor], n: int) -> tuple[int, ...]:
    """The output shape ``[N, n*C, H, W]`` of :func:`gasgnn.kernels.edge_mix`."""
    if ys:
        return tuple(ys[0].shape)
    x = shared[0]
    return (x.shape[0], n * x.shape[1], *x.shape[2:])


def on_device(t: Tensor | torch.device) -> AbstractContextManager:
    """A guard that makes ``t``'s CUDA device the current one for a launch (Triton launches on the
    current device: a tensor on ``cuda:1`` launched from ``cuda:0`` would fault); a no-op elsewhere."""
    dev = t if isinstance(t, torch.device) else t.device
    return torch.cuda.device(dev) if dev.type == "cuda" else nullcontext()
