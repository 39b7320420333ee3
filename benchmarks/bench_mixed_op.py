"""Time and peak memory of one supernet step: naive DARTS mixed op vs gasgnn's paths and memory options.

One step = forward + cross-entropy + backward of the whole supernet (default ``SearchSpace()``; batch 2
at 180x240 unless told otherwise). Configurations:

- ``naive``: a DARTS-style mixed op, ``sum(w * op(x) for w, op in zip(weights, ops))`` over a Python
  list that includes ``none`` (same op modules and weights as gasgnn's);
- ``reference``: gasgnn's MixedOp (``none`` skipped) with the plain PyTorch combination;
- ``fused``: gasgnn's MixedOp with the Triton kernels (GPU only: on the CPU they would run in Triton's
  interpreter, which is a correctness tool, not a fast path);
- ``default``: what ``Supernet(space)`` does out of the box (backend ``auto``: Triton on CUDA, the
  reference path on the CPU; on the CPU it is ``reference`` again and is left out);
- memory options on top of the default backend: ``ckpt`` (checkpointing), ``relu`` (shared ReLU),
  ``ckpt+relu``, ``pc2``/``pc4`` (PC-DARTS partial channels: a different, cheaper function).

Time: configurations interleaved round by round in one process, median over rounds (CPU: wall clock
after a synchronising step; GPU: CUDA events). Peak memory: on the GPU ``torch.cuda.max_memory_allocated``
above the memory live before the step; on the CPU the rise of the peak resident set size (``VmHWM`` in
``/proc/self/status``, reset through ``/proc/self/clear_refs``) during one step after a warm-up step,
in a fresh subprocess per configuration, with ``MALLOC_MMAP_THRESHOLD_=65536`` so that glibc returns freed
tensors to the OS and the resident set tracks the live tensors.

Usage::

    python benchmarks/bench_mixed_op.py                   # CPU, or GPU when available
    python benchmarks/bench_mixed_op.py --device cuda --rounds 20 --json gpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gasgnn import SearchSpace, Supernet, kernels
from gasgnn.models import MemoryOptions, MixedOp
from gasgnn.space import Zero

CONFIGS: dict[str, tuple[str, str, dict]] = {
    # name: (mixed-op flavour, kernel backend, memory options)
    "naive": ("naive", "reference", {}),
    "reference": ("gasgnn", "reference", {}),
    "fused": ("gasgnn", "triton", {}),
    "default": ("gasgnn", "auto", {}),
    "ckpt": ("gasgnn", "auto", {"checkpoint": True}),
    "relu": ("gasgnn", "auto", {"shared_relu": True}),
    "ckpt+relu": ("gasgnn", "auto", {"checkpoint": True, "shared_relu": True}),
    "pc2": ("gasgnn", "auto", {"partial_channels": 2}),
    "pc4": ("gasgnn", "auto", {"partial_channels": 4}),
}


class NaiveMixedOp(nn.Module):
    """The DARTS ``MixedOp.forward``: every op, ``none`` included, summed over a Python list."""

    def __init__(self, m: MixedOp) -> None:
        super().__init__()
        it = iter(m.ops)
        self.ops = nn.ModuleList(Zero(m.stride) if n == "none" else next(it) for n in m.op_names)

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        return sum(w * op(x) for w, op in zip(weights, self.ops))


def build(name: str, space: SearchSpace, device: torch.device) -> tuple[Supernet, str]:
    """The supernet of configuration ``name`` (same seed, hence same weights, for every name)."""
    flavour, backend, memory = CONFIGS[name]
    torch.manual_seed(0)
    net = Supernet(space, memory=MemoryOptions(**memory))
    if flavour == "naive":
        for cell in net.cells:
            cell.edges = nn.ModuleList(NaiveMixedOp(m) for m in cell.edges)
    return net.to(device).train(), backend


def make_step(net: Supernet, backend: str, x: Tensor, y: Tensor) -> Callable[[], None]:
    def step() -> None:
        net.zero_grad(set_to_none=True)
        with kernels.use_backend(backend):
            loss = F.cross_entropy(net(x), y)
            loss.backward()

    return step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def cpu_peak_child(name: str, batch: int, size: tuple[int, int]) -> None:
    """Child process: prints the peak-RSS rise (bytes) of one step of ``name`` after a warm-up step."""
    device = torch.device("cpu")
    net, backend = build(name, SearchSpace(), device)
    x = torch.randn(batch, 3, *size)
    y = torch.randint(0, net.space.num_classes, (batch, *size))
    step = make_step(net, backend, x, y)
    step()
    net.zero_grad(set_to_none=True)
    base = _status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM (the peak resident set size) to the current resident set size
    step()
    print(json.dumps({"peak_bytes": (_status_kb("VmHWM") - base) * 1024}))


def cpu_peak(name: str, batch: int, size: tuple[int, int]) -> int:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    cmd = [sys.executable, __file__, "--_child", name, "--batch", str(batch), "--size", *map(str, size)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_bytes"]


def gpu_peak(step: Callable[[], None], device: torch.device) -> int:
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base


def time_step(step: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    t0 = time.perf_counter()
    step()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default: auto)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--size", type=int, nargs=2, default=(180, 240), metavar=("H", "W"))
    p.add_argument("--rounds", type=int, default=5, help="timed rounds (default: 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default: 1)")
    p.add_argument("--configs", nargs="+", default=None, choices=sorted(CONFIGS))
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--json", default=None, help="also write the results to this file")
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    size = tuple(a.size)
    if a._child:
        cpu_peak_child(a._child, a.batch, size)
        return {}
    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if a.device == "auto" else a.device))
    names = a.configs or [n for n in CONFIGS if device.type == "cuda" or n not in ("fused", "default")]
    if device.type == "cpu" and "fused" in names:
        sys.exit("bench_mixed_op: 'fused' needs a GPU (on the CPU Triton only interprets)")
    space = SearchSpace()
    x = torch.randn(a.batch, 3, *size, device=device)
    y = torch.randint(0, space.num_classes, (a.batch, *size), device=device)
    steps = {}
    for n in names:
        net, backend = build(n, space, device)
        steps[n] = make_step(net, backend, x, y)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(a.warmup + a.rounds if a.rounds else 0):
        for n in names:  # interleaved, so drifts in machine load hit every configuration alike
            _sync(device)
            t = time_step(steps[n], device)
            if r >= a.warmup:
                times[n].append(t)
            print(f"round {r} {n}: {t:.3f} s", file=sys.stderr, flush=True)
    peaks: dict[str, int] = {}
    if not a.no_memory:
        for n in names:
            peaks[n] = gpu_peak(steps[n], device) if device.type == "cuda" else cpu_peak(n, a.batch, size)
            print(f"peak {n}: {peaks[n] / 2**20:.1f} MiB", file=sys.stderr, flush=True)
    base = "naive" if "naive" in names else names[0]
    rows = []
    for n in names:
        row: dict = {"config": n}
        if a.rounds:  # --rounds 0 measures memory only
            med = statistics.median(times[n])
            row.update(median_s=med, **{"time_vs_" + base: med / statistics.median(times[base])},
                       min_s=min(times[n]), max_s=max(times[n]), times_s=times[n])
        if n in peaks:
            row.update(peak_mib=peaks[n] / 2**20, **{"mem_vs_" + base: peaks[n] / peaks[base]})
        rows.append(row)
    meta = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "batch": a.batch, "size": list(size), "rounds": a.rounds, "warmup": a.warmup,
            "memory_method": "cuda.max_memory_allocated" if device.type == "cuda" else
            "peak RSS rise per step, subprocess, MALLOC_MMAP_THRESHOLD_=65536"}
    if device.type == "cuda":
        meta["gpu"] = torch.cuda.get_device_name(device)
    print(json.dumps(meta))
    head = f"{'config':<11} {'median s':>9} {'vs ' + base:>9} {'min s':>8} {'max s':>8}"
    print(head + f" {'peak MiB':>9} {'mem vs':>7}")
    for row in rows:
        tim = (f"{row['median_s']:9.3f} {row['time_vs_' + base]:9.3f} {row['min_s']:8.3f} {row['max_s']:8.3f}"
               if "median_s" in row else " " * 38)
        mem = f"{row['peak_mib']:9.1f} {row['mem_vs_' + base]:7.2f}" if "peak_mib" in row else ""
        print(f"{row['config']:<11} {tim} {mem}")
    result = {"meta": meta, "results": rows}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
