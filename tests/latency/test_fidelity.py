"""Validation that measures what users ask: networks over the whole latency range and near a target, each
timed twice in interleaved rounds, the table judged against the machine's own test-retest. Every assertion
here is on fixed numbers or a fake clock (no timing noise)."""

import math

import pytest
import torch

from gasgnn import SearchSpace, random_genotype
from gasgnn.latency import (
    SIZE_KEYS,
    LatencyTable,
    agreement,
    draw_networks,
    extreme_genotype,
    fidelity,
    size_metrics,
    time_networks,
    validate,
    verdict,
)
from gasgnn.latency import timing as timing_mod

SPACE = SearchSpace(num_cells=3, num_nodes=2, reduction_cells=(1,), channels=4, input_size=(32, 32), num_classes=9)


def known_table(space=SPACE, heads=("aspp",)):
    """A table with made-up, distinct numbers for every entry (no measuring)."""
    table = LatencyTable()
    for i, key in enumerate(table.required_keys(space, heads=heads)):
        table[key] = 0.01 * (i + 1) + 0.001 * (i % 7)
    return table


# --------------------------------------------------------------------------------------------------
# The figures and the verdict, on fixed numbers


def test_agreement_figures():
    a = agreement([1.0, 2.0, 3.0, 4.0], [1.0, 2.2, 2.9, 8.0])
    assert a["spearman"] == pytest.approx(1.0) and a["kendall"] == pytest.approx(1.0)
    assert a["mape"] == pytest.approx(100 * (0 + 0.2 / 2.2 + 0.1 / 2.9 + 4 / 8) / 4)
    assert a["within_10"] == pytest.approx(0.75) and a["range_ratio"] == pytest.approx(8.0)
    swapped = agreement([1.0, 2.0, 3.0], [1.0, 3.0, 2.0])
    assert swapped["spearman"] == pytest.approx(0.5) and swapped["kendall"] == pytest.approx(1 / 3)
    assert math.isnan(agreement([1.0, 2.0], [1.0, 2.0])["spearman"])  # too few points to rank


def test_size_metrics_separate_table_retest_and_band():
    predicted = [1.0, 2.0, 3.0, 4.0, 2.0, 2.1, 2.2]
    test = [1.0, 2.0, 3.0, 4.0, 2.0, 2.2, 2.1]
    retest = [1.0, 2.0, 3.0, 4.0, 2.2, 2.0, 2.1]
    m = size_metrics(predicted, test, retest, range_index=[0, 1, 2, 3], band_index=[4, 5, 6])
    assert set(SIZE_KEYS) <= set(m)
    assert m["spearman"] == pytest.approx(1.0) and m["mape"] == pytest.approx(0.0)
    assert m["retest_spearman"] == pytest.approx(1.0) and m["retest_mape"] == pytest.approx(0.0)
    assert m["range_ratio"] == pytest.approx(4.0) and m["within_10"] == 1.0
    # band: measured = mean(test, retest) = [2.1, 2.1, 2.1] has no spread, so no rank correlation;
    # the machine's own ranks in the band: test [2.0, 2.2, 2.1] vs retest [2.2, 2.0, 2.1]: -1
    assert math.isnan(m["band_spearman"]) and m["band_retest_spearman"] == pytest.approx(-1.0)
    assert m["band_mape"] == pytest.approx(100 * (0.1 / 2.1 + 0 + 0.1 / 2.1) / 3)


@pytest.mark.parametrize("band, retest, busy, dominated, status", [
    (0.90, 0.95, False, False, "pass"),   # 0.90 >= 0.9 x 0.95 = 0.855
    (0.85, 0.95, False, False, "fail"),   # 0.85 < 0.855
    (0.855, 0.95, False, False, "pass"),  # the boundary passes
    (0.95, 0.95, True, False, "not_a_result"),   # a busy machine
    (0.95, 0.95, False, True, "not_a_result"),   # the range itself within the noise
    (0.40, 0.45, False, False, "not_a_result"),  # the machine cannot rank the band itself
    (float("nan"), float("nan"), False, False, "not_a_result"),
])
def test_verdict(band, retest, busy, dominated, status):
    row = {"band_spearman": band, "band_retest_spearman": retest, "noise_dominated": dominated, "band_n": 10}
    v = verdict(row, busy)
    assert v["status"] == status
    if status == "pass":
        assert "ranks as well as the machine repeats itself" in v["text"]
    if status == "not_a_result":
        assert "NOT A RESULT" in v["text"]


def test_verdict_without_a_band():
    assert verdict({"band_spearman": math.nan, "band_retest_spearman": math.nan, "band_n": 0})["status"] == "no_band"


# --------------------------------------------------------------------------------------------------
# The networks


def test_extreme_genotypes_bound_the_space():
    table = known_table()
    light, heavy = extreme_genotype(SPACE, table), extreme_genotype(SPACE, table, heaviest=True)
    lo, hi = table.predict(light), table.predict(heavy)
    gen = torch.Generator().manual_seed(0)
    preds = [table.predict(random_genotype(SPACE, gen)) for _ in range(300)]
    assert lo <= min(preds) and max(preds) <= hi and lo < hi
    assert all(o != "none" for c in light.cells + heavy.cells for _, _, o in c.edges)
    assert [len(c.edges) for c in light.cells] == [len(c.edges) for c in random_genotype(SPACE, gen).cells]


def test_draw_networks_span_the_range_and_the_band():
    table = known_table()
    nets, range_index, band_index, near = draw_networks(table, SPACE, n=6, near_n=5, near_width=0.1, seed=1)
    assert range_index == [0, 1, 2, 3, 4, 5] and band_index == [6, 7, 8, 9, 10] and len(nets) == 11
    pred = [table.predict(g) for g in nets]
    assert pred[0] == pytest.approx(table.predict(extreme_genotype(SPACE, table)))
    assert pred[5] == pytest.approx(table.predict(extreme_genotype(SPACE, table, heaviest=True)))
    assert pred[:6] == sorted(pred[:6])  # stratified: each drawn at the next target up
    assert near == pytest.approx(sorted(pred[:6])[2] / 2 + sorted(pred[:6])[3] / 2)  # median of the range
    inside = [abs(p / near - 1) <= 0.1 for p in pred[6:]]
    assert sum(inside) >= 4
    again = draw_networks(table, SPACE, n=6, near_n=5, seed=1)[0]
    assert again == nets  # seeded
    _, _, _, near2 = draw_networks(table, SPACE, n=3, near_ms=1.23, near_n=1)
    assert near2 == 1.23
    with pytest.raises(ValueError, match="n must be >= 2"):
        draw_networks(table, SPACE, n=1)


# --------------------------------------------------------------------------------------------------
# Timing twice, interleaved


def test_two_series_are_interleaved_rounds(monkeypatch):
    """Passes alternate between the series: a machine that is fast in every even pass and slow in every odd
    one shows it as test vs retest (if the series ran one after the other, both would mix fast and slow)."""
    clock, state = [0.0], {"calls": 0}
    n = 3

    def call():
        state["calls"] += 1
        p = (state["calls"] - 1) // n  # the pass this call belongs to (one call per network and pass)
        clock[0] += 1e-3 if p % 2 == 0 else 3e-3

    monkeypatch.setattr(timing_mod.time, "perf_counter", lambda: clock[0])
    test, retest = time_networks([call] * n, warmup=0, repeats=2, rounds=2, series=2)
    assert test == pytest.approx([1.0] * n) and retest == pytest.approx([3.0] * n)


def test_validate_reports_every_figure(monkeypatch):
    """validate on a fixed table with a fake measurement: the JSON keys, the figures and the verdict."""
    table = known_table()
    quiet = {"control_ms": 1.0, "repeat_spread": 0.0, "drift": 0.0, "noise": 0.01, "busy": False}
    monkeypatch.setattr(fidelity, "measure_noise", lambda *a, **k: dict(quiet))
    monkeypatch.setattr(fidelity, "merge_noise", lambda samples: dict(quiet))
    genotypes = draw_networks(table, SPACE, n=5, near_n=4, seed=0)[0]  # what validate draws
    pred = [table.predict(g) for g in genotypes]
    seen = {}

    def timed(calls, device, warmup, repeats, rounds, series, anchors, progress, desc, speeds):
        speeds += [1.0, 1.2]
        seen.update(n=len(calls), series=series, anchors=len(anchors))
        return [[1.05 * p for p in pred], [0.95 * p for p in pred]]  # the table exact, the retest 10 % apart

    monkeypatch.setattr(fidelity, "time_networks", timed)
    res = validate(table, SPACE, n=5, near_n=4, seed=0, progress=False, anchors=3)
    assert seen == {"n": 9, "series": 2, "anchors": 3}
    assert res["range_index"] == [0, 1, 2, 3, 4] and res["band_index"] == [5, 6, 7, 8]
    assert res["backend"] == "torch" and len(res["genotypes"]) == 9 and res["busy"] is False
    (r,) = res["sizes"]
    assert set(SIZE_KEYS) <= set(r)
    assert r["predicted_ms"] == pytest.approx(pred)
    assert r["measured_ms"] == pytest.approx(pred)  # the mean of the two series
    assert r["spearman"] == pytest.approx(1.0) and r["mape"] == pytest.approx(0.0, abs=1e-9)
    assert r["retest_spearman"] == pytest.approx(1.0) and r["retest_mape"] == pytest.approx(100 * 0.1 / 0.95)
    assert r["within_10"] == 1.0 and r["range_ratio"] == pytest.approx(max(pred[:5]) / min(pred[:5]))
    assert r["band_spearman"] == pytest.approx(1.0) and r["band_retest_spearman"] == pytest.approx(1.0)
    assert r["verdict"]["status"] == "pass" and r["noise_dominated"] is False
    assert r["anchor_speed"] == {"median": pytest.approx(1.1), "min": 1.0, "max": 1.2}


def test_validate_on_given_networks_finds_the_band(monkeypatch):
    table = known_table()
    gen = torch.Generator().manual_seed(0)
    genotypes = [random_genotype(SPACE, gen) for _ in range(6)]
    pred = [table.predict(g) for g in genotypes]
    monkeypatch.setattr(fidelity, "time_networks", lambda calls, *a, **k: [pred, pred])
    near = sorted(pred)[3]
    res = validate(table, SPACE, genotypes=genotypes, near_ms=near, near_width=0.02, progress=False)
    assert res["range_index"] == list(range(6)) and res["near_ms"] == near
    assert res["band_index"] == [i for i, p in enumerate(pred) if abs(p / near - 1) <= 0.02]
