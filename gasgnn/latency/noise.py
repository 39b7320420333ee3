"""How much a latency measurement can be trusted on this machine right now, and validation that says so.

A control op (one fixed 3x3 convolution) is timed in bursts before, between and after the real work: the
spread of its repeats inside a burst and the drift of its median between bursts measure the machine's
noise. A correlation between predicted and measured latencies means something only when the networks'
latencies differ by more than that noise; random genotypes of one space differ by only ~20 %, so a busy
machine produces Spearman ~0 that says nothing about the table (issue 19, finding 8).
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

__all__ = ["NOISY", "measure_noise", "noise_dominated", "spanning_genotypes", "validate_with_noise", "within"]

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


def spanning_genotypes(table: Any, space: Any, n: int, seed: int = 0, head: str = "aspp",
                       head_channels: int = 128, pool: int = 10, input_size: tuple[int, int] | None = None) -> list:
    """``n`` genotypes whose predicted latencies span the space's range: from ``pool * n`` uniform samples,
    the ones at evenly spaced quantiles of the prediction (uniform samples alone cluster within ~20 %)."""
    from gasgnn.genotype import random_genotype

    gen = torch.Generator().manual_seed(seed)
    cands = [random_genotype(space, gen) for _ in range(max(n, pool * n))]
    size = tuple(input_size or space.input_size)
    keys = [k for g in cands for k, _ in table.genotype_keys(g, space, size, head, head_channels)]
    if table.missing(keys):
        return cands[:n]  # nothing to rank by yet; validate measures the entries it needs
    pred = np.array([table.predict(g, head, space, size, head_channels, raw=True) for g in cands])
    order = np.argsort(pred)
    picks = np.unique(np.round(np.linspace(0, len(cands) - 1, n)).astype(int))
    return [cands[order[i]] for i in picks]


def validate_with_noise(table: Any, space: Any, sizes: Sequence[tuple[int, int]] | None = None, n: int = 20,
                        span: bool = True, **kw: Any) -> dict[str, Any]:
    """:func:`~gasgnn.latency.measure.validate` on networks spanning the latency range, with the machine's
    noise measured before and after, the share within +-10 % per size, and ``noise_dominated`` per size.

    Keyword arguments go to :func:`~gasgnn.latency.measure.validate`.
    """
    from gasgnn.latency.measure import validate

    device, dtype = table.meta["device"], table.dtype
    before = measure_noise(device, dtype)
    genotypes = None
    if span:
        genotypes = spanning_genotypes(table, space, n, kw.get("seed", 0), kw.get("head", "aspp"),
                                       kw.get("head_channels", 128), input_size=(sizes or [None])[0])
    res = validate(table, space, sizes, n=n, genotypes=genotypes, **kw)
    noise = merge_noise([before, measure_noise(device, dtype)])
    res["noise"] = noise
    # A table measured on a busy machine cannot be validated either: its entries carry that noise.
    res["table_noise"] = table_noise = table.meta.get("noise") or {}
    res["span"] = span
    for r in res["sizes"]:
        r["within_10pct"] = within(r["predicted_ms"], r["measured_ms"])
        r["noise_dominated"] = bool(noise["busy"] or table_noise.get("busy")
                                    or noise_dominated(r["measured_ms"], noise["noise"]))
    return res
