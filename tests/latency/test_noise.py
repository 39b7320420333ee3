"""Latency noise, validation that refuses noise-dominated correlations, and whole-network calibration
(issue 19, finding 8)."""

import time

import pytest
import torch

from gasgnn import SearchSpace
from gasgnn.cli import main
from gasgnn.genotype import random_genotype
from gasgnn.latency import (
    LatencyTable,
    calibration_key,
    fidelity,
    fit_calibration,
    noise_dominated,
    within,
)
from gasgnn.latency import noise as noise_mod

SPACE = SearchSpace(num_cells=3, num_nodes=2, reduction_cells=(1,), channels=4, input_size=(32, 32), num_classes=9)


@pytest.fixture(scope="module")
def table():
    t = LatencyTable.measure(SPACE, repeats=2, warmup=1, progress=False, heads=("aspp",))
    t.meta["noise"] = {**t.meta["noise"], "busy": False}  # a shared test machine: judge validation's own noise
    return t


def test_table_records_its_noise(table):
    nz = table.meta["noise"]
    assert nz["control_ms"] > 0 and nz["repeat_spread"] >= 0 and nz["drift"] >= 0 and "busy" in nz


def test_within_and_noise_dominated():
    assert within([1.0, 2.0, 3.0], [1.05, 2.5, 3.0]) == pytest.approx(2 / 3)
    assert noise_dominated([10.0, 10.2, 9.9, 10.1], noise=0.05)  # 1 % apart, 5 % noise
    assert not noise_dominated([5.0, 10.0, 20.0], noise=0.05)


def test_calibration_is_fitted_stored_and_used_by_predict(table):
    fit = fit_calibration([1.0, 2.0, 3.0], [2.5, 4.5, 6.5])
    assert fit["scale"] == pytest.approx(2.0) and fit["offset"] == pytest.approx(0.5) and fit["mape_after"] < 1e-6
    with pytest.raises(ValueError, match="busy"):
        fit_calibration([1.0, 2.0, 3.0], [3.0, 2.0, 1.0])
    t = LatencyTable.from_dict(table.to_dict())
    g = random_genotype(SPACE, torch.Generator().manual_seed(3))
    raw = t.predict(g)
    t.meta["calibration"] = {calibration_key(SPACE.input_size, "aspp"): {"scale": 2.0, "offset": 1.0}}
    assert t.predict(g) == pytest.approx(2 * raw + 1) and t.predict(g, raw=True) == raw
    assert LatencyTable.from_dict(t.to_dict()).predict(g) == pytest.approx(2 * raw + 1)  # survives save/load


def _validate_argv(tmp_path, table, *extra):
    p = tmp_path / "t.json"
    table.save(p)
    return ["latency", *extra, "--table", str(p), "--num-cells", "3", "--num-nodes", "2", "--reduction-cells", "1",
            "--channels", "4", "--input-size", "32", "32", "--num-classes", "9", "--n", "4", "--near-n", "3",
            "--repeats", "2", "--warmup", "1", "--rounds", "1", "--no-progress"]


def test_validate_refuses_to_present_a_busy_machine_as_a_result(tmp_path, table, capsys, monkeypatch):
    real = noise_mod.measure_noise

    def busy(*a, **k):
        return {**real(*a, **k), "noise": 0.5, "busy": True}

    monkeypatch.setattr(fidelity, "measure_noise", busy)
    assert main(_validate_argv(tmp_path, table, "validate")) == 3
    cap = capsys.readouterr()
    assert "BUSY" in cap.out and "NOT A RESULT" in cap.out and "+-10 %" in cap.out and "noise" in cap.err
    assert main(_validate_argv(tmp_path, table, "calibrate")) == 2  # no calibration from a busy machine
    assert "too busy" in capsys.readouterr().err


def test_calibrate_command_stores_the_fit(tmp_path, table, capsys, monkeypatch):
    quiet = {"control_ms": 1.0, "repeat_spread": 0.0, "drift": 0.0, "noise": 0.0, "busy": False}
    monkeypatch.setattr(fidelity, "measure_noise", lambda *a, **k: dict(quiet))  # this test machine is shared
    monkeypatch.setattr(fidelity, "merge_noise", lambda samples: dict(quiet))
    predicted = []
    real_predict = LatencyTable.predict

    def predict(self, *a, **k):
        predicted.append(real_predict(self, *a, **k))
        return predicted[-1]

    def timed(calls, *a, **k):  # a machine exactly 2x the table + 1 ms, with a retest 1 % apart
        pred = predicted[-len(calls):]
        return [[2 * p + 1 for p in pred], [1.01 * (2 * p + 1) for p in pred]]

    monkeypatch.setattr(LatencyTable, "predict", predict)
    monkeypatch.setattr(fidelity, "time_networks", timed)
    assert main(_validate_argv(tmp_path, table, "calibrate")) == 0
    monkeypatch.setattr(LatencyTable, "predict", real_predict)
    cal = LatencyTable.load(tmp_path / "t.json").meta["calibration"][calibration_key((32, 32), "aspp")]
    assert cal["n"] == 7 and cal["scale"] == pytest.approx(2.01) and cal["offset"] == pytest.approx(1.005)
    assert "calibration: measured = 2.010 x table + 1.005 ms" in capsys.readouterr().out


def test_anchored_measurement_divides_by_the_machine_speed(monkeypatch):
    """Each block of network calls is divided by the speed the anchors report at that moment."""
    import time as _time

    import gasgnn.latency.timing as timing

    clock = iter(range(10**6))
    monkeypatch.setattr(_time, "perf_counter", lambda: next(clock) * 1e-3)  # every call lasts 1 ms
    calls = [lambda: None, lambda: None]
    (raw,) = timing.time_networks(calls, warmup=0, repeats=4, rounds=2)
    assert raw == pytest.approx([1.0, 1.0])
    monkeypatch.setattr(timing, "_anchor_time", lambda fn, device, calls: 3.0)  # anchors run 3x slower than the table
    (anchored,) = timing.time_networks(calls, warmup=0, repeats=4, rounds=2, anchors=[(lambda: None, 1.5)])
    assert anchored == pytest.approx([0.5, 0.5])  # 1 ms at twice the table's time: 0.5 ms at the table's speed


def test_anchors_are_timed_as_blocks_not_as_one_cold_call():
    """A runtime whose threads sleep between calls pays a wake-up on the first call after a network's block;
    the anchor's time is the median of a short block, as the table's entries are timed, so a machine at
    the table's speed reads about 1, not the cold call's ratio (ONNX Runtime read 1.3-1.6 before)."""
    from gasgnn.latency import timing

    state = {"last": None}

    def network():
        state["last"] = "network"

    def anchor():  # 2 ms when hot, 6 ms on the first call after something else ran
        time.sleep(0.006 if state["last"] != "anchor" else 0.002)
        state["last"] = "anchor"

    speeds = []
    timing.time_networks([network], warmup=0, repeats=6, rounds=3, anchors=[(anchor, 2.0)], speeds=speeds)
    assert len(speeds) == 3 and max(speeds) < 2.2
    cold = []
    timing.time_networks([network], warmup=0, repeats=6, rounds=3, anchors=[(anchor, 2.0)], speeds=cold,
                         anchor_calls=1)
    assert min(cold) >= 2.9  # one cold call reads the wake-up as a 3x slower machine
