"""Timing calls on a device: blocks of calls on the CPU, CUDA events on the GPU, and whole networks timed
round-robin in interleaved series (test and retest), with speed anchors on the CPU.

On the CPU a timed sample is a block of back-to-back calls lasting at least :data:`BLOCK_MS`, so
sub-millisecond pieces are not lost in the timer's resolution. On CUDA every call is timed between two
CUDA events (GPU timestamps: no host synchronisation inside the timed span), and before each call of a
table entry a buffer larger than the device's L2 cache is zeroed (:func:`flush_bytes`), so the entry runs
with cold caches as it would inside a network whose activations evicted them.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from gasgnn.utils import device_sync

__all__ = ["BLOCK_MS", "COLD_BYTES", "FLUSH_L2_FACTOR", "cuda_time_call", "flush_bytes", "time_call",
           "time_networks", "timer_for", "wall_time_call"]

BLOCK_MS = 2.0
"""Minimum duration (ms) of one timed block of calls on the CPU (:func:`wall_time_call`)."""

COLD_BYTES = 32 * 2**20
"""Working set (bytes) a timed CPU piece cycles through (see :func:`gasgnn.latency.measure.piece_runner`);
also the smallest CUDA flush buffer."""

FLUSH_L2_FACTOR = 4
"""The CUDA flush buffer is this many times the device's L2 cache."""


def flush_bytes(device: str | torch.device, l2_bytes: int | None = None) -> int:
    """Size (bytes) of the buffer zeroed before each timed CUDA call: :data:`FLUSH_L2_FACTOR` times the
    device's L2 cache (``torch.cuda.get_device_properties(device).L2_cache_size``), at least
    :data:`COLD_BYTES`; 256 MiB when the L2 size is unknown.

    Args:
        device (str or torch.device): The CUDA device.
        l2_bytes (int, optional): The L2 size; :obj:`None` asks the device. (default: :obj:`None`)
    """
    if l2_bytes is None:
        props = torch.cuda.get_device_properties(torch.device(device))
        l2_bytes = int(getattr(props, "L2_cache_size", 0) or 0)
    return max(COLD_BYTES, FLUSH_L2_FACTOR * l2_bytes) if l2_bytes > 0 else 8 * COLD_BYTES


def _flush_buffer(device: torch.device, nbytes: int) -> Tensor:
    return torch.empty(nbytes, dtype=torch.uint8, device=device)


def _on(device: torch.device) -> contextlib.AbstractContextManager:
    """Makes ``device`` current, so events record on its stream (``cuda`` alone: the current one)."""
    return torch.cuda.device(device) if device.index is not None else contextlib.nullcontext()


def wall_time_call(fn: Callable[[], Any], device: str | torch.device = "cpu", warmup: int = 10,
                   repeats: int = 50, block_ms: float = BLOCK_MS) -> float:
    """Median wall time of one ``fn()`` call in milliseconds, after ``warmup`` untimed calls.

    Each of the ``repeats`` samples times a block of back-to-back calls lasting at least ``block_ms``
    (one call when the call is slower), divided by the calls in the block. Blocks keep sub-millisecond
    ops off the timer's resolution and let an op and a whole network see background load the same way.
    """
    device = torch.device(device)
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        device_sync(device)
        n, t = 1, time.perf_counter()
        fn()
        device_sync(device)
        once = time.perf_counter() - t
        if block_ms > 0 and once > 0:
            n = max(1, min(10_000, int(block_ms / 1000.0 / once)))
        times = []
        for _ in range(max(1, repeats)):
            t = time.perf_counter()
            for _ in range(n):
                fn()
            device_sync(device)
            times.append((time.perf_counter() - t) / n)
    return 1000.0 * statistics.median(times)


def cuda_time_call(fn: Callable[[], Any], device: str | torch.device = "cuda", warmup: int = 10,
                   repeats: int = 50, flush: int | None = None) -> float:
    """Median time (ms) of one ``fn()`` call on a CUDA device, each call between two CUDA events, with a
    buffer of ``flush`` bytes (default :func:`flush_bytes`, larger than the L2 cache) zeroed before it
    outside the timed span.

    Args:
        fn (callable): The call.
        device (str or torch.device, optional): The CUDA device. (default: :obj:`"cuda"`)
        warmup (int, optional): Untimed calls first. (default: :obj:`10`)
        repeats (int, optional): Timed calls, median taken. (default: :obj:`50`)
        flush (int, optional): Flush buffer bytes; ``0`` flushes nothing. (default: :obj:`None`)
    """
    device = torch.device(device)
    nbytes = flush_bytes(device) if flush is None else int(flush)
    buf = _flush_buffer(device, nbytes) if nbytes > 0 else None
    repeats = max(1, repeats)
    with _on(device), torch.inference_mode():
        for _ in range(warmup):
            fn()
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
        for start, end in zip(starts, ends):
            if buf is not None:
                buf.zero_()
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize(device)
    return float(statistics.median(s.elapsed_time(e) for s, e in zip(starts, ends)))


def timer_for(device: str | torch.device) -> Callable[..., float]:
    """The timing function for ``device``: :func:`cuda_time_call` on CUDA, :func:`wall_time_call`
    elsewhere (both ``(fn, device, warmup, repeats) -> median ms``)."""
    return cuda_time_call if torch.device(device).type == "cuda" else wall_time_call


def time_call(fn: Callable[[], Any], device: str | torch.device = "cpu", warmup: int = 10,
              repeats: int = 50) -> float:
    """Median milliseconds of one ``fn()`` call on ``device`` (:func:`timer_for` chooses how)."""
    return timer_for(device)(fn, device, warmup, repeats)


def _call_times(fn: Callable[[], Any], n: int, device: torch.device) -> list[float]:
    """Milliseconds of each of ``n`` back-to-back calls: CUDA events on CUDA (one synchronisation after
    the block), synchronised wall time elsewhere."""
    if device.type == "cuda":
        with _on(device):
            ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(n)]
            for start, end in ev:
                start.record()
                fn()
                end.record()
            torch.cuda.synchronize(device)
        return [float(s.elapsed_time(e)) for s, e in ev]
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        device_sync(device)
        out.append((time.perf_counter() - t) * 1e3)
    return out


#: Back-to-back calls of a speed anchor after each block; their median is the anchor's time. A single call
#: after a network's block is biased: a runtime whose threads sleep when idle (ONNX Runtime without
#: spinning) pays the wake-up on it, and the anchors then read 1.3-1.6x the table's block-timed entries.
ANCHOR_CALLS = 3


def _anchor_time(fn: Callable[[], Any], device: torch.device, calls: int = ANCHOR_CALLS) -> float:
    """Milliseconds of a speed anchor: the median of ``calls`` back-to-back calls, timed as table entries
    are (in a block), not as one cold call."""
    return float(statistics.median(_call_times(fn, calls, device)))


def time_networks(
    calls: Sequence[Callable[[], Any]], device: str | torch.device = "cpu", warmup: int = 3, repeats: int = 15,
    rounds: int = 3, series: int = 1, anchors: Sequence[tuple[Callable[[], Any], float]] = (),
    progress: bool = False, desc: str = "networks", speeds: list[float] | None = None,
    anchor_calls: int = ANCHOR_CALLS,
) -> list[list[float]]:
    """End-to-end median latency (ms) of each network call, in ``series`` independent measurements.

    The calls are timed round-robin: ``rounds * series`` passes over all networks (order rotated between
    passes), pass ``j`` belonging to series ``j % series``, each pass timing a block of
    ``ceil(repeats / rounds)`` calls per network. So a burst of load spreads over all networks, and with
    ``series=2`` every network is timed twice in interleaved rounds: the two series' agreement is the
    machine's own test-retest agreement.

    With ``anchors`` (pairs of a call and its latency in the table; CPU only), each block of a network is
    followed by a short block of every anchor (the median of ``anchor_calls`` calls, timed as the
    table's entries are), and the block's times are divided by the machine's speed at
    that moment (the median of anchor time / table time): the result is the network's latency at the
    speed the table was measured at. On a host whose speed drifts by tens of percent within a minute (a
    shared VM) this keeps the drift out of the ranking (docs/latency.md). On CUDA every call is timed
    with CUDA events and anchors are refused: a single synchronised call of a piece does not measure the
    speed at which block-timed entries ran.

    Args:
        calls (sequence of callable): One zero-argument call per network.
        device (str or torch.device, optional): Where they run. (default: :obj:`"cpu"`)
        warmup (int, optional): Untimed calls per network first. (default: :obj:`3`)
        repeats (int, optional): Timed calls per network and series. (default: :obj:`15`)
        rounds (int, optional): Passes per series. (default: :obj:`3`)
        series (int, optional): Independent measurements. (default: :obj:`1`)
        anchors (sequence, optional): ``(call, table ms)`` pairs (CPU only). (default: none)
        progress (bool, optional): Progress bar. (default: :obj:`False`)
        desc (str, optional): Progress bar label. (default: :obj:`"networks"`)
        speeds (list, optional): Receives the machine speed of every block (anchor time / table time; 1.0
            without anchors), for diagnosis. (default: :obj:`None`)
        anchor_calls (int, optional): Back-to-back calls per anchor and block; their median is the anchor's
            time (1: one cold call, biased for runtimes whose threads sleep). (default: :data:`ANCHOR_CALLS`)

    Returns:
        list: ``[series][network]`` median milliseconds.
    """
    from tqdm.auto import tqdm

    device = torch.device(device)
    if anchors and device.type == "cuda":
        raise ValueError("time_networks: speed anchors are for the CPU; on CUDA the networks are timed with "
                         "CUDA events and no anchors")

    def sync() -> None:
        device_sync(device)

    rounds, series = max(1, rounds), max(1, series)
    per_round = max(1, math.ceil(repeats / rounds))
    times: list[list[list[float]]] = [[[] for _ in calls] for _ in range(series)]
    order = list(range(len(calls)))
    with torch.inference_mode():
        for fn in calls:
            for _ in range(warmup):
                fn()
        for fn, _ in anchors:
            fn()
        bar = tqdm(total=rounds * series * len(calls), desc=desc, unit="net", disable=not progress, leave=False)
        for j in range(rounds * series):
            s = j % series
            shift = (j // series) % max(1, len(calls))
            for i in order[shift:] + order[:shift]:
                sync()
                block = _call_times(calls[i], per_round, device)
                speed = (statistics.median(_anchor_time(fn, device, anchor_calls) / ms for fn, ms in anchors)
                         if anchors else 1.0)
                times[s][i] += [b / speed for b in block]
                if speeds is not None:
                    speeds.append(float(speed))
                bar.update()
        bar.close()
    return [[float(statistics.median(t)) for t in ts] for ts in times]
