"""The CUDA paths of latency measurement, run on the CPU by injection: CUDA-event timing for entries and
networks, a cache flush larger than the device's L2, no speed anchors, and no CPU thread check for CUDA
tables (issue 25, finding 6)."""

import types

import pytest
import torch

from gasgnn.latency import (
    COLD_BYTES,
    FLUSH_L2_FACTOR,
    LatencyKey,
    LatencyTable,
    LatencyTableError,
    cuda_time_call,
    flush_bytes,
    time_networks,
    timer_for,
    wall_time_call,
)
from gasgnn.latency import measure as measure_mod
from gasgnn.latency import table as table_mod
from gasgnn.latency import timing as timing_mod

MiB = 2**20


class FakeCuda:
    """CUDA events on a fake GPU clock that each call advances by ``call_ms``; the flush buffer records its
    size and how often it was zeroed."""

    def __init__(self, monkeypatch, call_ms=2.0):
        self.clock, self.call_ms, self.zeroed, self.flush_nbytes, self.events = 0.0, call_ms, 0, None, 0
        fake = self

        class Event:
            def __init__(self, enable_timing=False):
                assert enable_timing
                fake.events += 1
                self.t = None

            def record(self):
                self.t = fake.clock

            def elapsed_time(self, end):
                return end.t - self.t

        class Buffer:
            def zero_(self):
                fake.zeroed += 1

        def flush_buffer(device, nbytes):
            fake.flush_nbytes = nbytes
            return Buffer()

        monkeypatch.setattr(torch.cuda, "Event", Event)
        monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
        monkeypatch.setattr(timing_mod, "_flush_buffer", flush_buffer)

    def call(self):
        self.clock += self.call_ms


def _l2(monkeypatch, nbytes):
    props = types.SimpleNamespace(name="fake", **({} if nbytes is None else {"L2_cache_size": nbytes}))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: props)


@pytest.mark.parametrize("l2, expected", [(60 * MiB, FLUSH_L2_FACTOR * 60 * MiB),  # an H200-sized L2
                                          (4 * MiB, COLD_BYTES),                 # at least COLD_BYTES
                                          (None, 8 * COLD_BYTES)])               # unknown L2
def test_flush_follows_the_device_l2(monkeypatch, l2, expected):
    _l2(monkeypatch, l2)
    assert flush_bytes("cuda") == expected
    assert flush_bytes("cuda", l2_bytes=50 * MiB) == FLUSH_L2_FACTOR * 50 * MiB


def test_cuda_entries_are_timed_with_events_after_a_flush(monkeypatch):
    _l2(monkeypatch, 60 * MiB)
    fake = FakeCuda(monkeypatch, call_ms=2.5)
    assert timer_for("cuda") is cuda_time_call and timer_for("cpu") is wall_time_call
    ms = timing_mod.time_call(fake.call, "cuda", warmup=2, repeats=7)
    assert ms == pytest.approx(2.5) and fake.events == 14
    assert fake.flush_nbytes == FLUSH_L2_FACTOR * 60 * MiB and fake.flush_nbytes > 60 * MiB
    assert fake.zeroed == 7  # before every timed call


def test_measure_key_on_cuda_flushes_instead_of_cycling_copies(monkeypatch):
    """On CUDA one copy of a piece is timed with the L2 flushed; on the CPU it cycles through cold copies."""
    seen = []

    def runner(key, device, dtype, cold_bytes, backend):
        seen.append((torch.device(device).type, cold_bytes))
        return lambda: None

    monkeypatch.setattr(measure_mod, "piece_runner", runner)
    timers = []
    monkeypatch.setattr(measure_mod, "time_call", lambda fn, device, w, r: timers.append(timer_for(device)) or 1.0)
    key = LatencyKey("op", ("conv_3x3", 4, 1, 8, 8), "float32", 1)
    measure_mod.measure_key(key, "cuda")
    measure_mod.measure_key(key, "cpu")
    assert seen == [("cuda", 0), ("cpu", None)] and timers == [cuda_time_call, wall_time_call]


def test_cuda_networks_are_timed_with_events_and_no_anchors(monkeypatch):
    fake = FakeCuda(monkeypatch, call_ms=4.0)
    (ms,) = time_networks([fake.call], "cuda", warmup=0, repeats=3, rounds=1)
    assert ms == pytest.approx([4.0]) and fake.events == 6
    with pytest.raises(ValueError, match="anchors are for the CPU"):
        time_networks([fake.call], "cuda", warmup=0, repeats=1, anchors=[(fake.call, 1.0)])


def _cuda_table(threads):
    return LatencyTable(meta={**LatencyTable().meta, "device": "cuda", "device_name": "cuda: fake",
                              "threads": threads})


def test_cuda_tables_skip_the_cpu_thread_check(monkeypatch, tmp_path):
    key = LatencyKey("op", ("conv_3x3", 4, 1, 8, 8), "float32", 1)
    quiet = {"control_ms": 1.0, "repeat_spread": 0.0, "drift": 0.0, "noise": 0.0, "busy": False}
    monkeypatch.setattr(table_mod, "measure_noise", lambda *a, **k: dict(quiet))
    monkeypatch.setattr(table_mod, "measure_key", lambda key, device, warmup, repeats, backend: 0.5)
    other = torch.get_num_threads() + 7
    cuda = _cuda_table(other)
    assert cuda.measure_keys([key], progress=False) == [key] and cuda[key] == 0.5
    cuda.save(tmp_path / "cuda.json")
    assert LatencyTable.load(tmp_path / "cuda.json").meta["threads"] == other  # loads, no thread check
    cpu = LatencyTable(meta={**LatencyTable().meta, "threads": other})
    with pytest.raises(LatencyTableError, match="threads"):
        cpu.measure_keys([key], progress=False)
    # two CUDA tables measured with different CPU thread counts merge; CPU tables do not
    assert len(cuda.merge(_cuda_table(other + 1))) == 1
    with pytest.raises(LatencyTableError, match="threads"):
        cpu.merge(LatencyTable(meta={**cpu.meta, "threads": other + 1}))
