"""Calibrating a latency table with a few whole networks.

The table sums per-op times measured in isolation; a whole network runs with other caches, fusions and
allocations, so its latency is roughly ``scale * sum + offset``. A few measured networks spanning the
space's latency range fit ``scale`` and ``offset`` (HELP reports rank correlation 0.987-0.989 from 10
samples); the fit is stored in the table's metadata per input size and head, and
:meth:`~gasgnn.latency.LatencyTable.predict` applies it. :func:`gasgnn.latency.calibrate` measures the networks
and stores the fit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["apply_calibration", "calibration_key", "fit_calibration"]


def calibration_key(input_size: Sequence[int], head: str) -> str:
    """The metadata key of a calibration: ``'HxW/head'``."""
    return f"{int(input_size[0])}x{int(input_size[1])}/{head}"


def fit_calibration(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """Least-squares ``measured ~ scale * predicted + offset``; with fewer than 2 distinct predictions only
    a scale (ratio of means).

    Raises:
        ValueError: when there is nothing to fit or the fit is not a positive scale.
    """
    p, m = np.asarray(predicted, float), np.asarray(measured, float)
    if len(p) < 1 or not (np.all(np.isfinite(p)) and np.all(np.isfinite(m))):
        raise ValueError("calibration needs finite predicted and measured latencies")
    if len(p) >= 2 and np.ptp(p) > 0:
        scale, offset = np.polyfit(p, m, 1)
    else:
        scale, offset = float(m.mean() / p.mean()), 0.0
    if not scale > 0:
        raise ValueError(f"calibration: the fitted scale is {scale:.3g} (measured latencies do not grow with the "
                         f"table's predictions; the machine is probably too busy)")
    fit = scale * p + offset
    return {"scale": float(scale), "offset": float(offset), "n": int(len(p)),
            "mape_before": float(np.mean(np.abs(p - m) / m) * 100),
            "mape_after": float(np.mean(np.abs(fit - m) / m) * 100)}


def apply_calibration(meta: Mapping[str, Any], total_ms: float, input_size: Sequence[int], head: str) -> float:
    """``scale * total + offset`` when ``meta`` holds a calibration for this size and head, else ``total``."""
    cal = (meta.get("calibration") or {}).get(calibration_key(input_size, head))
    if not cal:
        return total_ms
    out = cal["scale"] * total_ms + cal["offset"]
    return out if math.isfinite(out) and out > 0 else total_ms
