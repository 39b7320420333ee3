"""How much a latency measurement can be trusted on this machine right now.

A control op (one fixed 3x3 convolution) is timed in bursts before, between and after the real work: the
spread of its repeats inside a burst and the drift of its median between bursts measure the machine's
noise. A correlation between predicted and measured latencies means something only when the networks'
latencies differ by more than that noise; random genotypes of one space differ by only ~20 %, so a busy
machine produces Spearman ~0 that says nothing about the table (issue 19, finding 8).
:func:`gasgnn.latency.validate` uses these to refuse such runs, beside its test-retest comparison.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["NOISY", "measure_noise", "merge_noise", "noise_dominated", "warn_if_busy", "within"]

#: Relative noise (control-op drift or repeat spread) above which a machine counts as too busy to time.
NOISY = 0.10


def _control(device: torch.device, dtype: torch.dtype) -> tuple[torch.nn.Module, torch.Tensor]:
    conv = torch.nn.Conv2d(16, 16, 3, padding=1, bias=False).to(device, dtype).eval()
    return conv, torch.randn(1, 16, 64, 64, device=device, dtype=dtype)


@torch.no_grad()
def measure_noise(device: str | torch.device = "cpu", dtype: str | torch.dtype = "float32", bursts: int = 5,
                  repeats: int = 10, pause: float = 0.0) -> dict[str, Any]:
    """Times the control op in ``bursts`` bursts of ``repeats`` calls.

    Returns:
        dict: ``control_ms`` (median), ``repeat_spread`` (median over bursts of the inter-quartile range
        / median), ``drift`` ((max - min) / median of the burst medians), ``noise`` (the larger of the two),
        ``loadavg`` and ``busy`` (whether ``noise`` exceeds :data:`NOISY`).
    """
    from gasgnn.utils import device_sync

    device = torch.device(device)
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    conv, x = _control(device, dtype)
    for _ in range(3):
        conv(x)
    meds, spreads = [], []
    for b in range(bursts):
        ts = []
        for _ in range(repeats):
            device_sync(device)
            t = time.perf_counter()
            conv(x)
            device_sync(device)
            ts.append((time.perf_counter() - t) * 1e3)
        q1, med, q3 = np.percentile(ts, [25, 50, 75])
        meds.append(float(med))
        spreads.append(float((q3 - q1) / med) if med > 0 else math.inf)
        if pause and b + 1 < bursts:
            time.sleep(pause)
    med = float(np.median(meds))
    drift = float((max(meds) - min(meds)) / med) if med > 0 else math.inf
    spread = float(np.median(spreads))
    noise = max(drift, spread)
    try:
        load = list(os.getloadavg())
    except (OSError, AttributeError):
        load = None
    return {"control_ms": med, "repeat_spread": spread, "drift": drift, "noise": noise, "loadavg": load,
            "busy": noise > NOISY}


def merge_noise(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One noise record from several :func:`measure_noise` samples taken over a job (drift across them)."""
    meds = [s["control_ms"] for s in samples]
    med = float(np.median(meds))
    drift = max([s["drift"] for s in samples] + [float((max(meds) - min(meds)) / med) if med > 0 else math.inf])
    spread = float(max(s["repeat_spread"] for s in samples))
    noise = max([drift, spread] + [s["noise"] for s in samples])
    return {"control_ms": med, "repeat_spread": spread, "drift": drift, "noise": noise,
            "loadavg": samples[-1].get("loadavg"), "busy": noise > NOISY or any(s["busy"] for s in samples),
            "samples": len(samples)}


def warn_if_busy(noise: dict[str, Any], what: str) -> None:
    """Warns (``UserWarning``) when ``noise`` says the machine was too busy for ``what``."""
    if noise.get("busy"):
        warnings.warn(
            f"{what}: this machine looks busy (control op noise {100 * noise['noise']:.0f} % > {100 * NOISY:.0f} %, "
            f"load average {noise.get('loadavg')}); timings may be off. Re-measure on a quiet machine.",
            stacklevel=2)


def within(predicted: Sequence[float], measured: Sequence[float], tol: float = 0.10) -> float:
    """The share of networks whose prediction is within ``+-tol`` of the measurement (nn-Meter's figure)."""
    p, m = np.asarray(predicted, float), np.asarray(measured, float)
    return float(np.mean(np.abs(p - m) <= tol * m)) if len(m) else math.nan


def noise_dominated(measured: Sequence[float], noise: float) -> bool:
    """Whether the networks' latencies differ by less than about twice the relative noise, so a rank
    correlation would mostly measure the noise."""
    m = np.asarray(measured, float)
    if len(m) < 3 or not np.all(m > 0):
        return True
    signal = float(np.std(np.log(m)))  # relative spread between the networks
    return signal < 2 * noise
