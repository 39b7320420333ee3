"""The mixed-op combination ``out = sum_k w_k * y_k``: the supernet's hot path.

:func:`mixed_sum` is the one entry point the supernet calls. It dispatches to

- ``"triton"``: the custom operators of :mod:`gasgnn.kernels.ops`, whose CUDA implementations launch the
  fused Triton kernels (:mod:`gasgnn.kernels.triton_kernels`): one pass over memory forward, one pass
  backward producing every ``grad_y_k`` and the ``K`` reductions ``grad_w``. Being operators with fake
  implementations and registered autograd, they compile with ``torch.compile`` without a graph break;
- ``"reference"``: plain PyTorch (:func:`mixed_sum_reference`), differentiated by autograd: the definition
  the kernels are tested against.

The backend is chosen by :func:`set_backend` (or the :func:`use_backend` context manager), else by the
``GASGNN_KERNELS`` environment variable, else ``"auto"``: Triton for CUDA tensors when Triton (>= 3.2)
is installed, the reference path for everything else. Forcing ``"triton"`` on CPU tensors runs the
kernels in Triton's interpreter and needs ``TRITON_INTERPRET=1`` set before the first call (that is how
the tests check the kernels on machines without a GPU).

Triton is imported lazily, so the package works without it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor

from gasgnn.kernels.ops import edge_mix_op, interpreted, mixed_sum_op, triton_available
from gasgnn.kernels.reference import edge_mix_reference, mixed_sum_reference

__all__ = [
    "BACKENDS", "ENV_VAR", "edge_mix", "get_backend", "mixed_sum", "resolve_backend", "set_backend",
    "triton_available", "use_backend",
]

BACKENDS: tuple[str, ...] = ("auto", "triton", "reference")
"""Valid backend names."""

ENV_VAR = "GASGNN_KERNELS"
_TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_backend: str | None = None  # None: follow the environment variable


def _check_name(name: str, source: str) -> str:
    name = name.strip().lower()
    if name not in BACKENDS:
        raise ValueError(f"{source}: unknown kernel backend {name!r}; choose one of {list(BACKENDS)}")
    return name


def set_backend(name: str | None) -> None:
    """Selects the implementation of :func:`mixed_sum` for the whole process.

    Args:
        name (str, optional): ``"auto"``, ``"triton"`` or ``"reference"``; :obj:`None` goes back to the
            ``GASGNN_KERNELS`` environment variable (default ``"auto"``).
    """
    global _backend
    _backend = None if name is None else _check_name(name, "set_backend")


def get_backend() -> str:
    """The selected backend name (``set_backend``, else ``$GASGNN_KERNELS``, else ``"auto"``)."""
    if _backend is not None:
        return _backend
    return _check_name(os.environ.get(ENV_VAR, "auto") or "auto", f"environment variable {ENV_VAR}")


@contextmanager
def use_backend(name: str | None) -> Iterator[None]:
    """Context manager form of :func:`set_backend`; restores the previous selection on exit."""
    global _backend
    prev = _backend
    set_backend(name)
    try:
        yield
    finally:
        _backend = prev


def resolve_backend(t: Tensor) -> str:
    """The backend :func:`mixed_sum` uses for op outputs like ``t`` (``"triton"`` or ``"reference"``).

    Raises:
        RuntimeError: ``"triton"`` is forced but Triton (>= 3.2) is not installed.
    """
    name = get_backend()
    if name == "reference":
        return name
    if name == "triton":
        if not triton_available():
            raise RuntimeError(
                f"gasgnn.kernels: backend 'triton' was forced (set_backend or {ENV_VAR}) but Triton >= 3.2 "
                "is not installed; pip install 'gasgnn[kernels]' or use 'auto'"
            )
        if not t.is_cuda and not interpreted():
            raise RuntimeError(
                "gasgnn.kernels: backend 'triton' got CPU tensors, but the Triton kernels were compiled for the GPU; "
                "export TRITON_INTERPRET=1 before gasgnn.kernels first uses Triton to run them in its interpreter"
            )
        return name
    ok = t.is_cuda and t.dtype in _TRITON_DTYPES and triton_available()
    return "triton" if ok else "reference"


def _validate(ys: Sequence[Tensor], w: Tensor) -> None:
    if len(ys) == 0:
        raise ValueError("mixed_sum: got no op outputs (ys is empty)")
    if w.dim() != 1 or w.numel() != len(ys):
        raise ValueError(
            f"mixed_sum: w must have shape [{len(ys)}] (one weight per op), got {tuple(w.shape)}"
        )
    y0 = ys[0]
    for k, y in enumerate(ys[1:], 1):
        if y.shape != y0.shape or y.dtype != y0.dtype or y.device != y0.device:
            raise ValueError(
                f"mixed_sum: ys[{k}] is {tuple(y.shape)} {y.dtype} on {y.device}, but ys[0] is "
                f"{tuple(y0.shape)} {y0.dtype} on {y0.device}; all op outputs must match"
            )
    if w.device != y0.device:
        raise ValueError(f"mixed_sum: w is on {w.device} but the op outputs are on {y0.device}")


def mixed_sum(ys: Sequence[Tensor], w: Tensor) -> Tensor:
    """Weighted sum of op outputs, dispatched to the selected implementation (see the module docs).

    Args:
        ys (sequence of Tensor): ``K`` op outputs of equal shape, dtype and device, e.g. ``[N, C, H, W]``.
        w (Tensor): Weights ``[K]`` on the same device.

    Returns:
        Tensor: the shape and dtype of ``ys[0]``, differentiable in ``w`` and every ``ys[k]``.
    """
    _validate(ys, w)
    if resolve_backend(ys[0]) == "triton":
        return mixed_sum_op(list(ys), w)
    return mixed_sum_reference(ys, w)


# ----------------------------------------------------------------------------------------------
# The node-batched supernet's combination: all edges leaving one node at once.


def _validate_edges(ys: Sequence[Tensor], shared: Sequence[Tensor], w: Tensor) -> None:
    if not ys and not shared:
        raise ValueError("edge_mix: got no op outputs")
    if w.dim() != 2 or w.shape[1] != len(ys) + len(shared):
        raise ValueError(f"edge_mix: w must be [n, {len(ys) + len(shared)}], got {tuple(w.shape)}")
    n = w.shape[0]
    ref = shared[0] if shared else None
    for k, y in enumerate(ys):
        if ref is not None and (y.shape[1] != n * ref.shape[1] or y.shape[2:] != ref.shape[2:]):
            raise ValueError(f"edge_mix: ys[{k}] is {tuple(y.shape)}, expected n={n} times {tuple(ref.shape)}")
        if y.shape != ys[0].shape or y.dtype != ys[0].dtype:
            raise ValueError(f"edge_mix: ys[{k}] is {tuple(y.shape)} {y.dtype}, ys[0] {tuple(ys[0].shape)}")
    if ys and ys[0].shape[1] % n:
        raise ValueError(f"edge_mix: {ys[0].shape[1]} channels do not split into n={n} edges")


def edge_mix(ys: Sequence[Tensor], shared: Sequence[Tensor], w: Tensor) -> Tensor:
    """:func:`edge_mix_reference`, dispatched like :func:`mixed_sum` (the ``gasgnn::edge_mix`` operator: one
    fused Triton kernel forward and one backward on GPUs).

    Args:
        ys (sequence of Tensor): ``K`` edge-batched op outputs ``[N, n*C, H, W]``.
        shared (sequence of Tensor): ``S`` edge-shared op outputs ``[N, C, H, W]``.
        w (Tensor): ``[n, K + S]``.

    Returns:
        Tensor: ``[N, n*C, H, W]``, differentiable in ``w`` and every input.
    """
    _validate_edges(ys, shared, w)
    if resolve_backend(ys[0] if ys else shared[0]) == "triton":
        return edge_mix_op(list(ys), list(shared), w)
    return edge_mix_reference(ys, shared, w)
