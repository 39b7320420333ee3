"""How much memory a network will need, estimated before anything is allocated.

The network is built on PyTorch's ``meta`` device (shapes without storage) and run once on a meta input:
every module's output size is summed (the activations a training step keeps for its backward) or its
largest input plus output is taken (the working set of inference). A command checks the estimate against
the memory free on its device and refuses a size that cannot fit with one line naming its flag, instead of
an allocator traceback minutes later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["MemoryEstimate", "check_memory", "estimate_memory", "free_memory", "human_bytes", "spec_memory_check"]


@dataclass
class MemoryEstimate:
    """Estimated bytes of a network at one input shape.

    Args:
        weights (int): Parameters and buffers.
        activations (int): Activations: all module outputs (training) or the largest input + output
            (inference).
        training (bool): Whether the estimate is for a training step (weights counted four times: the
            weights, their gradients and two optimiser states).
    """

    weights: int
    activations: int
    training: bool

    @property
    def total(self) -> int:
        """The estimated peak in bytes."""
        return self.weights * (4 if self.training else 1) + self.activations


def human_bytes(n: float) -> str:
    """``1.2 GB``-style size."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


def _tensors(x: Any) -> list[Tensor]:
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in _tensors(v)]
    if isinstance(x, dict):
        return [t for v in x.values() for t in _tensors(v)]
    return []


def _nbytes(x: Any) -> int:
    return sum(t.numel() * t.element_size() for t in _tensors(x))


def estimate_memory(build: Callable[[], nn.Module], input_shape: tuple[int, ...], training: bool = False,
                    dtype: torch.dtype = torch.float32, forward: Callable[[nn.Module, Tensor], Any] | None = None,
                    ) -> MemoryEstimate:
    """Estimates a network's memory at ``input_shape`` without allocating it.

    Args:
        build (callable): Builds the network (called under the ``meta`` device).
        input_shape (tuple): ``[N, C, H, W]``.
        training (bool, optional): A training step (all activations kept) or inference. (default: :obj:`False`)
        dtype (torch.dtype, optional): The input's dtype. (default: :obj:`torch.float32`)
        forward (callable, optional): ``forward(net, x)``; default ``net(x)``.

    Returns:
        MemoryEstimate: weights and activations in bytes.
    """
    with torch.device("meta"):
        net = build()
    net.train(training)
    weights = sum(t.numel() * t.element_size() for t in (*net.parameters(), *net.buffers()))
    sizes: list[tuple[int, int]] = []

    def hook(mod: nn.Module, args: Any, out: Any) -> None:
        sizes.append((_nbytes(args), _nbytes(out)))

    leaves = [m for m in net.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        x = torch.empty(input_shape, device="meta", dtype=dtype)
        with torch.no_grad():
            out = forward(net, x) if forward is not None else net(x)
    finally:
        for h in handles:
            h.remove()
    if training:
        acts = sum(o for _, o in sizes) + _nbytes(out)
    else:
        acts = max((i + o for i, o in sizes), default=0) + _nbytes(out)
    return MemoryEstimate(int(weights), int(acts), training)


def free_memory(device: str | torch.device) -> int | None:
    """Bytes free on ``device`` now (CUDA: the driver's free memory; CPU: the available RAM), :obj:`None`
    when unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type == "cpu":
        try:
            import psutil
        except ImportError:
            return None
        return int(psutil.virtual_memory().available)
    return None


def check_memory(estimate: MemoryEstimate, device: str | torch.device, what: str, flags: str,
                 free: int | None = None) -> None:
    """Refuses a network that cannot fit: one line naming the flags to lower.

    Args:
        estimate (MemoryEstimate): From :func:`estimate_memory`.
        device (str or torch.device): Where it would run.
        what (str): E.g. ``"the supernet at 100000x100000, batch 2"``.
        flags (str): The options that set the size, e.g. ``"--input-size/--crop or --batch-size"``.
        free (int, optional): Bytes free (default: :func:`free_memory`).

    Raises:
        ValueError: when the estimate exceeds the free memory.
    """
    free = free_memory(device) if free is None else free
    if free is None or estimate.total <= free:
        return
    raise ValueError(
        f"{flags}: {what} needs about {human_bytes(estimate.total)} ({human_bytes(estimate.weights)} of weights, "
        f"{human_bytes(estimate.activations)} of activations; estimated before allocating), more than the "
        f"{human_bytes(free)} free on {torch.device(device)}; lower {flags}"
    )


def spec_memory_check(sizes: Sequence[Sequence[int]] | None, device: str | torch.device, flags: str, batch: int = 1,
                      training: bool = False) -> Callable[[dict[str, Any]], None]:
    """A ``check(spec)`` for :func:`~gasgnn.models.loading.load_model`: refuses a model spec whose network
    cannot fit at any of ``sizes`` (:obj:`None`: the input size of the spec's genotype space, else 360x480;
    inference at batch ``batch`` unless ``training``), before it is built."""
    def check(spec: dict[str, Any]) -> None:
        from gasgnn.models.loading import build_model

        todo = sizes
        if todo is None:
            space = (spec.get("genotype") or {}).get("space") or {}
            todo = [tuple(space.get("input_size") or (360, 480))]
        for h, w in todo:
            est = estimate_memory(lambda: build_model(spec, aux=False), (batch, 3, int(h), int(w)), training)
            check_memory(est, device, f"the network at {h}x{w}, batch {batch}", flags)

    return check
