"""Validation that measures what users ask of a latency table, judged against the machine's own noise.

Two questions: does the table rank the networks a search chooses between, and how close is it in
milliseconds? :func:`validate` answers both on networks drawn for each:

- **range** networks spanning the space's latency range, from the lightest to the heaviest derivable
  network (:func:`~gasgnn.latency.budget.extreme_genotype`), stratified in predicted latency;
- **band** networks drawn near a target latency (``near_ms``, default the median of the range), as a
  search's candidates under a budget are (:func:`~gasgnn.latency.budget.draw_near`).

Every network is timed twice in interleaved rounds (:func:`~gasgnn.latency.timing.time_networks` with two
series), so the machine's own test-retest agreement is reported beside the table's, and the verdict
(:func:`verdict`) compares the two: *the table ranks as well as the machine repeats itself* when, in the
band, ``band_spearman >= 0.9 * band_retest_spearman``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from gasgnn.latency.backends import make_backend
from gasgnn.latency.budget import draw_near, extreme_genotype
from gasgnn.latency.calibrate import calibration_key, fit_calibration
from gasgnn.latency.loading import check_backend
from gasgnn.latency.measure import piece_runner, unique
from gasgnn.latency.noise import measure_noise, merge_noise, noise_dominated, within
from gasgnn.latency.timing import time_networks

__all__ = ["MIN_RETEST", "RANKS_AS_WELL", "SIZE_KEYS", "agreement", "calibrate", "draw_networks", "size_metrics",
           "validate", "verdict"]

#: The verdict's factor: the table passes when ``band_spearman >= RANKS_AS_WELL * band_retest_spearman``.
RANKS_AS_WELL = 0.9
#: Below this retest Spearman in the band the machine cannot rank the band itself: no verdict.
MIN_RETEST = 0.5
#: The figures :func:`validate` reports per input size (beside the per-network lists).
SIZE_KEYS = ("spearman", "kendall", "mape", "within_10", "range_ratio", "retest_spearman", "retest_mape",
             "band_spearman", "band_retest_spearman", "band_mape")


def agreement(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """How well ``predicted`` matches ``measured`` latencies.

    Returns:
        dict: ``mape`` and ``bias`` (mean absolute and signed percentage error, %), ``pearson``,
        ``spearman`` and ``kendall`` (NaN with fewer than 3 points or no spread), ``within_10`` (share of
        predictions within +-10 %) and ``range_ratio`` (max / min measured).
    """
    from scipy import stats

    p, m = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    n = len(m)
    out = {"mape": float(np.mean(np.abs(p - m) / m) * 100) if n else math.nan,
           "bias": float(np.mean((p - m) / m) * 100) if n else math.nan,
           "pearson": math.nan, "spearman": math.nan, "kendall": math.nan,
           "within_10": within(p, m, 0.10), "range_ratio": float(m.max() / m.min()) if n else math.nan}
    if n >= 3 and np.ptp(p) > 0 and np.ptp(m) > 0:
        out["pearson"] = float(stats.pearsonr(p, m)[0])
        out["spearman"] = float(stats.spearmanr(p, m)[0])
        out["kendall"] = float(stats.kendalltau(p, m)[0])
    return out


def size_metrics(predicted: Sequence[float], test: Sequence[float], retest: Sequence[float],
                 range_index: Sequence[int], band_index: Sequence[int]) -> dict[str, Any]:
    """The figures of one input size: the table against the measurement (mean of the two series) over the
    range networks, the first series against the second (the machine's test-retest), and both again over
    the band networks.

    Args:
        predicted (sequence of float): The table's latency of every network.
        test (sequence of float): The first measurement of every network.
        retest (sequence of float): The second measurement.
        range_index (sequence of int): The range networks.
        band_index (sequence of int): The near-target band networks.

    Returns:
        dict: every key of :data:`SIZE_KEYS`, plus ``pearson``, ``bias``, ``retest_kendall``,
        ``band_kendall`` and ``band_retest_mape``.
    """
    p, a, b = (np.asarray(v, dtype=float) for v in (predicted, test, retest))
    m = (a + b) / 2

    def part(idx: Sequence[int]) -> tuple[dict[str, float], dict[str, float]]:
        i = np.asarray(list(idx), dtype=int)
        return agreement(p[i], m[i]), agreement(a[i], b[i])

    table, machine = part(range_index)
    band, band_machine = part(band_index)
    return {**{k: table[k] for k in ("spearman", "kendall", "pearson", "mape", "bias", "within_10",
                                     "range_ratio")},
            "retest_spearman": machine["spearman"], "retest_kendall": machine["kendall"],
            "retest_mape": machine["mape"],
            "band_spearman": band["spearman"], "band_kendall": band["kendall"], "band_mape": band["mape"],
            "band_retest_spearman": band_machine["spearman"], "band_retest_mape": band_machine["mape"]}


def verdict(row: dict[str, Any], busy: bool = False) -> dict[str, str]:
    """The verdict on one input size of :func:`validate`: ``status`` and a sentence ``text``.

    - ``not_a_result`` when the machine (or the table's measurement) was busy, when even the range
      networks differ by less than the machine's noise (``row['noise_dominated']``), or when the machine
      does not repeat its own ranking of the band (``band_retest_spearman`` below :data:`MIN_RETEST`);
    - ``pass`` when ``band_spearman >= RANKS_AS_WELL * band_retest_spearman``: the table ranks as well as
      the machine repeats itself;
    - ``fail`` otherwise; ``no_band`` when no band networks were measured.

    Args:
        row (dict): The size's figures (:func:`size_metrics`, and ``noise_dominated``).
        busy (bool, optional): The machine or the table's measurement was busy. (default: :obj:`False`)
    """
    def out(status: str, text: str) -> dict[str, str]:
        return {"status": status, "text": text}

    if busy:
        return out("not_a_result", "the machine (or the table's measurement) was busy: NOT A RESULT")
    if row.get("noise_dominated"):
        return out("not_a_result", "the networks' latencies differ by less than the machine's noise: NOT A RESULT")
    bs, br = row.get("band_spearman", math.nan), row.get("band_retest_spearman", math.nan)
    if not row.get("band_n", 1):
        return out("no_band", "no near-target band was measured")
    if not math.isfinite(br) or br < MIN_RETEST:
        return out("not_a_result", f"the machine does not repeat its own ranking of the near-target band (retest "
                                   f"Spearman {br:.3f} < {MIN_RETEST}): NOT A RESULT")
    if math.isfinite(bs) and bs >= RANKS_AS_WELL * br:
        return out("pass", f"the table ranks as well as the machine repeats itself (band Spearman {bs:.3f} >= "
                           f"{RANKS_AS_WELL} x retest {br:.3f})")
    return out("fail", f"the table ranks worse than the machine repeats itself (band Spearman {bs:.3f} < "
                       f"{RANKS_AS_WELL} x retest {br:.3f})")


def draw_networks(
    table: Any, space: Any, n: int = 20, near_ms: float | None = None, near_n: int = 10, near_width: float = 0.1,
    seed: int = 0, head: str = "aspp", head_channels: int = 128,
) -> tuple[list, list[int], list[int], float]:
    """The networks :func:`validate` times, by the table's prediction at ``space.input_size``.

    ``n`` range networks: the lightest and the heaviest derivable network and ``n - 2`` drawn at evenly
    spaced targets between them; ``near_n`` band networks drawn within ``near_ms * (1 +- near_width)``
    (``near_ms`` defaults to the median prediction of the range networks).

    Returns:
        (list, list, list, float): the genotypes (range first, then band), the indices of the range and of
        the band networks, and ``near_ms``.
    """
    if n < 2:
        raise ValueError(f"validate: n must be >= 2 (the lightest and the heaviest network), got {n}")
    if not 0 < near_width < 1:
        raise ValueError(f"validate: near_width must be in (0, 1), got {near_width}")
    gen = torch.Generator().manual_seed(seed)
    kw = dict(head=head, head_channels=head_channels)
    light, heavy = extreme_genotype(space, table, False, **kw), extreme_genotype(space, table, True, **kw)
    lo, hi = (float(table.predict(g, **kw)) for g in (light, heavy))
    nets, pred = [light], [lo]
    for t in np.linspace(lo, hi, n)[1:-1]:
        g, ms = draw_near(space, table, float(t), gen, tol=0.5 * (hi - lo) / max(1, n - 1) / t, **kw)
        nets.append(g)
        pred.append(ms)
    nets.append(heavy)
    pred.append(hi)
    near = float(np.median(pred)) if near_ms is None else float(near_ms)
    if near <= 0:
        raise ValueError(f"validate: --near-ms must be > 0, got {near}")
    band = []
    for _ in range(max(0, near_n)):
        t = near * (1 + near_width * (2 * float(torch.rand((), generator=gen)) - 1))
        g, ms = draw_near(space, table, t, gen, tol=min(0.05, near_width), **kw)
        band.append(g)
    return nets + band, list(range(len(nets))), list(range(len(nets), len(nets) + len(band))), near


def _spread(values: Sequence[float]) -> dict[str, float] | None:
    """Median, min and max of ``values`` (:obj:`None` when empty)."""
    if not values:
        return None
    return {"median": float(np.median(values)), "min": float(np.min(values)), "max": float(np.max(values))}


def validate(
    table: Any, space: Any, sizes: Sequence[tuple[int, int]] | None = None, n: int = 20,
    near_ms: float | None = None, near_n: int = 10, near_width: float = 0.1, head: str = "aspp",
    head_channels: int = 128, seed: int = 0, warmup: int = 3, repeats: int = 20, rounds: int = 5, anchors: int = 8,
    measure_missing: bool = True, path: str | os.PathLike | None = None, progress: bool = True,
    genotypes: Sequence | None = None, backend: str | None = None,
) -> dict[str, Any]:
    """Measures derived networks end to end on the table's device and backend and compares them with the
    table's predictions, and the machine with itself.

    The networks (:func:`draw_networks`) are drawn by the prediction at the first size and kept for the
    others. Missing table entries are measured first (the whole space at the first size, to find its
    range). At each size every network runs on the table's backend and is timed twice in interleaved rounds
    (``repeats`` calls in ``rounds`` passes per series; on the CPU with ``anchors`` speed anchors, on CUDA
    with CUDA events and none); the machine's noise is measured before and after.

    Args:
        table (LatencyTable): The table.
        space (SearchSpace): The space.
        sizes (list of tuple, optional): Input sizes; :obj:`None` is ``space.input_size``. (default: :obj:`None`)
        n (int, optional): Range networks (>= 2). (default: :obj:`20`)
        near_ms (float, optional): Band target at the first size; :obj:`None` is the median of the range.
            (default: :obj:`None`)
        near_n (int, optional): Band networks. (default: :obj:`10`)
        near_width (float, optional): Half-width of the band, relative. (default: :obj:`0.1`)
        head (str, optional): Head. (default: :obj:`"aspp"`)
        head_channels (int, optional): Head width. (default: :obj:`128`)
        seed (int, optional): Drawing seed. (default: :obj:`0`)
        warmup (int, optional): Untimed calls per network. (default: :obj:`3`)
        repeats (int, optional): Timed calls per network and series. (default: :obj:`20`)
        rounds (int, optional): Passes per series. (default: :obj:`5`)
        anchors (int, optional): CPU speed anchors (the costliest entries; ``0``: raw wall times; none on
            CUDA). (default: :obj:`8`)
        measure_missing (bool, optional): Measure missing entries. (default: :obj:`True`)
        path (str, optional): Table file new entries are saved into. (default: :obj:`None`)
        progress (bool, optional): Progress bars. (default: :obj:`True`)
        genotypes (sequence, optional): Networks to time instead of drawn ones (all count as range
            networks; the band is those predicted within ``near_ms * (1 +- near_width)``). (default: :obj:`None`)
        backend (str, optional): :obj:`None` or the table's own; another one is refused. (default: :obj:`None`)

    Returns:
        dict: ``sizes`` (per size: the :data:`SIZE_KEYS` figures and those of :func:`size_metrics`,
        ``input_size``, ``predicted_ms``, ``measured_ms`` (mean of the series), ``test_ms``, ``retest_ms``,
        ``band_n``, ``anchor_speed`` (median/min/max of the machine speed the anchors measured: 1 means the
        table's speed), ``noise_dominated`` and ``verdict``), and ``genotypes`` (JSON, aligned with the
        per-network lists), ``range_index``, ``band_index``, ``near_ms``, ``backend``, ``device``, ``noise``,
        ``table_noise``, ``busy``, the settings, load averages and ``seconds``.
    """
    from gasgnn.genotype import Genotype
    from gasgnn.models import GASNet

    t0 = time.perf_counter()
    sizes = [tuple(space.input_size)] if not sizes else [tuple(int(v) for v in s) for s in sizes]
    name = check_backend(table, backend, str(path) if path else "latency table")
    device, dtype = torch.device(table.meta["device"]), getattr(torch, table.dtype)
    runtime = make_backend(name, device, table.dtype, table.meta["threads"])
    anchors = anchors if device.type != "cuda" else 0
    before = measure_noise(device, dtype)
    sp0 = space.replace(input_size=sizes[0])
    kw = dict(head=head, head_channels=head_channels)
    if genotypes is None:
        table.ensure(sp0, heads=(head,), head_channels=head_channels, measure_missing=measure_missing, path=path,
                     progress=progress)
        drawn, range_index, band_index, near = draw_networks(table, sp0, n, near_ms, near_n, near_width, seed, **kw)
        genotypes = [Genotype(g.cells, space) for g in drawn]
    else:
        genotypes, range_index, band_index, near = list(genotypes), list(range(len(genotypes))), None, near_ms
    out: dict[str, Any] = {
        "n": len(range_index), "near_n": None, "near_ms": near, "near_width": near_width, "head": head,
        "head_channels": head_channels, "seed": seed, "backend": name, "device": str(device),
        "device_name": table.meta["device_name"], "threads": torch.get_num_threads(), "anchors": anchors,
        "warmup": warmup, "repeats": repeats, "rounds": rounds, "loadavg_before": list(os.getloadavg()),
        "sizes": []}
    torch.manual_seed(seed)
    nets = [GASNet(g, space, **kw).to(device, dtype).eval() for g in genotypes]
    for size in sizes:
        keys = [k for g in genotypes for k, _ in table.genotype_keys(g, space, size, head, head_channels)]
        table.ensure_keys(keys, measure_missing=measure_missing, path=path, progress=progress)
        predicted = [float(table.predict(g, head, space, size, head_channels)) for g in genotypes]
        if band_index is None:  # given networks: the band is those near the target at the first size
            near = float(np.median(predicted)) if near is None else float(near)
            band_index = [i for i in range_index if abs(predicted[i] / near - 1) <= near_width]
            out["near_ms"] = near
        x = torch.randn(table.batch, space.in_channels, *size, device=device, dtype=dtype)
        with torch.no_grad():
            calls = [runtime.prepare(net, (x,)) for net in nets]
        costly = sorted(unique(keys), key=lambda k: -table[k])[:anchors]
        refs = [(piece_runner(k, device, dtype, None, runtime), table[k] + runtime.call_overhead_ms())
                for k in costly]
        speeds: list[float] = []
        test, retest = time_networks(calls, device, warmup, repeats, rounds, series=2, anchors=refs,
                                     progress=progress, desc=f"networks {size[0]}x{size[1]} ({name})", speeds=speeds)
        del calls, refs
        row = {"input_size": list(size), **size_metrics(predicted, test, retest, range_index, band_index),
               "band_n": len(band_index), "predicted_ms": predicted,
               "measured_ms": [(a + b) / 2 for a, b in zip(test, retest)], "test_ms": test, "retest_ms": retest,
               "anchor_speed": _spread(speeds)}
        out["sizes"].append(row)
    noise = merge_noise([before, measure_noise(device, dtype)])
    table_noise = table.meta.get("noise") or {}
    busy = bool(noise["busy"] or table_noise.get("busy"))
    for row in out["sizes"]:
        row["noise_dominated"] = bool(noise_dominated([row["measured_ms"][i] for i in range_index], noise["noise"]))
        row["verdict"] = verdict(row, busy)
    out.update(near_n=len(band_index or []), range_index=range_index, band_index=band_index or [], noise=noise,
               table_noise=table_noise, busy=busy, loadavg_after=list(os.getloadavg()),
               seconds=time.perf_counter() - t0, genotypes=[g.to_dict() for g in genotypes])
    return out


def calibrate(table: Any, space: Any, sizes: Sequence[tuple[int, int]] | None = None, n: int = 10,
              **kw: Any) -> dict[str, Any]:
    """Measures networks spanning the latency range (and near-target ones) per size, fits scale and offset
    on all of them, and stores the fit in ``table.meta['calibration']`` (save the table to keep it). Refuses
    when the machine was too noisy.

    Keyword arguments go to :func:`validate`.

    Returns:
        dict: the validation result, with ``calibration`` per size.
    """
    res = validate(table, space, sizes, n=n, **kw)
    if res["noise"]["busy"]:
        raise ValueError(f"calibrate: the machine was too busy to calibrate (control op noise "
                         f"{100 * res['noise']['noise']:.0f} %); run it on a quiet machine")
    cals = dict(table.meta.get("calibration") or {})
    head = res["head"]
    for r in res["sizes"]:
        fit = fit_calibration(r["predicted_ms"], r["measured_ms"])
        fit["noise"] = res["noise"]["noise"]
        cals[calibration_key(r["input_size"], head)] = fit
        r["calibration"] = fit
    table.meta["calibration"] = cals
    return res
