"""The latency term of the search loss: loss forms and an adaptive latency weight."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor


def latency_loss(
    expected_ms: Tensor, form: str = "linear", target_ms: float | None = None,
    target_fps: float | None = None,
) -> Tensor:
    """The latency term of the search loss ``CE + lambda * latency_loss(...)``.

    Forms:
        - ``'linear'``: :math:`T` (ms), or :math:`T / T_0` when a target :math:`T_0` is given.
        - ``'log'``: :math:`\\log T` (scale-free: the gradient is relative, :math:`\\nabla T / T`).
        - ``'target'``: :math:`\\max(0, T / T_0 - 1)`: no penalty at or below the target latency
          :math:`T_0` (``target_ms``, or ``1000 / target_fps``).

    Args:
        expected_ms (Tensor): Expected latency in ms (a scalar from :func:`expected_latency`).
        form (str, optional): ``'linear'``, ``'log'`` or ``'target'``. (default: :obj:`"linear"`)
        target_ms (float, optional): Target latency. (default: :obj:`None`)
        target_fps (float, optional): Target frame rate (alternative to ``target_ms``). (default: :obj:`None`)
    """
    if target_ms is not None and target_fps is not None:
        raise ValueError("give target_ms or target_fps, not both")
    if target_fps is not None:
        if target_fps <= 0:
            raise ValueError(f"target_fps must be > 0, got {target_fps}")
        target_ms = 1000.0 / target_fps
    if target_ms is not None and target_ms <= 0:
        raise ValueError(f"target_ms must be > 0, got {target_ms}")
    if form == "linear":
        return expected_ms if target_ms is None else expected_ms / target_ms
    if form == "log":
        return torch.log(expected_ms)
    if form == "target":
        if target_ms is None:
            raise ValueError("the 'target' latency loss needs target_ms or target_fps")
        return torch.relu(expected_ms / target_ms - 1.0)
    raise ValueError(f"unknown latency loss form {form!r}; use 'linear', 'log' or 'target'")


class AdaptiveLatencyWeight:
    """Adapts the latency weight lambda to keep the predicted FPS inside a window.

    After each :meth:`step` with the current predicted latency, lambda is multiplied by ``factor`` when
    the network is too slow (FPS below ``lo``) and divided by it when it is faster than needed (FPS above
    ``hi``), within ``[min_weight, max_weight]``.

    Args:
        fps_window (tuple): ``(lo, hi)`` frames per second.
        factor (float, optional): Multiplicative step, > 1. (default: :obj:`1.1`)
        init (float, optional): Initial lambda. (default: :obj:`1e-3`)
        min_weight (float, optional): Lower bound. (default: :obj:`0.0`)
        max_weight (float, optional): Upper bound. (default: :obj:`inf`)
    """

    def __init__(self, fps_window: tuple[float, float], factor: float = 1.1, init: float = 1e-3,
                 min_weight: float = 0.0, max_weight: float = math.inf) -> None:
        lo, hi = fps_window
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
            raise ValueError(f"fps_window must be finite (lo, hi) with 0 < lo <= hi, got {fps_window}")
        if factor <= 1:
            raise ValueError(f"factor must be > 1, got {factor}")
        if not min_weight <= init <= max_weight:
            raise ValueError(f"init {init} is outside [{min_weight}, {max_weight}]")
        self.fps_window, self.factor = (float(lo), float(hi)), float(factor)
        self.min_weight, self.max_weight = float(min_weight), float(max_weight)
        self.weight = float(init)

    def step(self, predicted_ms: float | Tensor) -> float:
        """Updates lambda from the predicted latency (ms); returns the new lambda."""
        ms = float(predicted_ms)
        fps = 1000.0 / ms if ms > 0 else math.inf
        lo, hi = self.fps_window
        if fps < lo:
            self.weight = min(self.max_weight, max(self.weight, 1e-12) * self.factor)
        elif fps > hi:
            self.weight = max(self.min_weight, self.weight / self.factor)
        return self.weight

    def state_dict(self) -> dict[str, Any]:
        """For checkpoints."""
        return {"weight": self.weight, "fps_window": list(self.fps_window), "factor": self.factor}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores :meth:`state_dict`."""
        self.weight = float(state["weight"])
        self.fps_window = tuple(float(v) for v in state["fps_window"])
        self.factor = float(state["factor"])

    def __repr__(self) -> str:
        return (f"AdaptiveLatencyWeight(weight={self.weight:.3g}, fps_window={self.fps_window}, "
                f"factor={self.factor})")
