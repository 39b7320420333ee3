"""Time and peak memory of one full search step (architecture update + weight update), side by side.

Variants, timed interleaved round by round in one process (so load from other jobs hits them alike):

- ``naive``: an independent naive DARTS supernet and first-order step (``benchmarks/naive_darts.py``);
- ``per_edge``: gasgnn's Searcher with per-edge mixed ops (``SearchConfig(supernet_impl="per_edge")``);
- ``batched``: gasgnn's Searcher with node-batched cells (the default).

Both gasgnn variants run the real GAS step: guide (``gcn_sim``), latency term from a table with synthetic
entries, and the lean architecture step. Peak memory: on the CPU the rise of the peak resident set size
(``VmHWM``, reset through ``/proc/self/clear_refs``) during one step after a warm-up step, in a fresh
subprocess per variant with ``MALLOC_MMAP_THRESHOLD_=65536`` (torch's CPU allocations are invisible to
tracemalloc); on a GPU ``torch.cuda.max_memory_allocated`` above the memory live before the step.

    python benchmarks/bench_search_step.py [--device cpu] [--batch 2] [--size 180 240] [--repeats 5]
        [--variants naive per_edge batched] [--amp] [--cuda-graphs] [--json out.json]
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
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
VARIANTS = ("naive", "per_edge", "batched")


def build(variant: str, args: argparse.Namespace) -> Callable[[], float]:
    """A closure running one full search step of ``variant`` on fixed random batches."""
    s, batch = make(variant, args)
    return lambda: s.step(batch, batch, 1.0)


def make(variant: str, args: argparse.Namespace) -> tuple[Any, tuple[torch.Tensor, torch.Tensor]]:
    """The searcher of ``variant`` (its ``step(batch_w, batch_a, tau)`` is one full search step) and a fixed
    random batch ``(x, y)`` on ``args.device``. ``benchmarks/gpu_rows.py`` builds its search-step rows here."""
    from gasgnn import SearchSpace
    from gasgnn.latency import LatencyTable
    from gasgnn.search import SearchConfig, Searcher

    torch.manual_seed(0)
    device = torch.device(args.device)
    space = SearchSpace(input_size=tuple(args.size), **(args.space or {}))
    x = torch.randn(args.batch, 3, *args.size, device=device)
    y = torch.randint(0, space.num_classes, (args.batch, *args.size), device=device)
    if variant == "naive":
        from naive_darts import NaiveSearcher

        s = NaiveSearcher(space, device, amp=args.amp)
    else:
        keys = LatencyTable().required_keys(space, heads=("aspp",))
        table = LatencyTable({k: 0.1 + 1e-3 * i for i, k in enumerate(keys)})  # distinct: a table must rank ops
        cfg = SearchConfig(guide=args.guide, latency_weight=0.1, warmup_epochs=0, supernet_impl=variant,
                           amp=args.amp, cuda_graphs=args.cuda_graphs)
        s = Searcher(space, cfg, lambda e: [], lambda e: [], table=table, device=device, progress=False)
    return s, (x, y)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def peak_child(args: argparse.Namespace) -> None:
    """Runs in a fresh process: peak memory rise of one step after a warm-up step."""
    step = build(args.child, args)
    step()
    _sync(args.device)
    if args.device.startswith("cuda"):
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        _sync(args.device)
        peak = torch.cuda.max_memory_allocated() - base
    else:
        base = _status_kb("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident set size
        step()
        peak = (_status_kb("VmHWM") - base) * 1024
    print(json.dumps({"peak_bytes": peak}))


def peak_memory(variant: str, argv: list[str]) -> int:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    out = subprocess.run([sys.executable, __file__, *argv, "--child", variant], check=True, env=env,
                         capture_output=True, text=True).stdout
    return int(json.loads(out.strip().splitlines()[-1])["peak_bytes"])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--size", type=int, nargs=2, default=[180, 240], metavar=("H", "W"))
    p.add_argument("--repeats", type=int, default=5, help="timed rounds (each runs every variant once)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--guide", default="gcn_sim")
    p.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA only)")
    p.add_argument("--cuda-graphs", action="store_true", help="gasgnn variants under CUDA graphs (CUDA only)")
    p.add_argument("--space", type=json.loads, default=None, help="SearchSpace overrides as JSON (tiny runs)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        peak_child(args)
        return {}
    steps = {v: build(v, args) for v in args.variants}
    times: dict[str, list[float]] = {v: [] for v in args.variants}
    for r in range(args.warmup + args.repeats):
        for v in args.variants:  # interleaved: every round runs every variant once
            _sync(args.device)
            t = time.perf_counter()
            steps[v]()
            _sync(args.device)
            if r >= args.warmup:
                times[v].append(time.perf_counter() - t)
    del steps
    child_argv = [a for a in argv if a != "--no-memory"]
    res = {"device": args.device, "batch": args.batch, "size": args.size, "amp": args.amp,
           "cuda_graphs": args.cuda_graphs, "threads": torch.get_num_threads(), "variants": {}}
    base = statistics.median(times[args.variants[0]])
    for v in args.variants:
        med = statistics.median(times[v])
        row = {"median_s": med, "min_s": min(times[v]), "max_s": max(times[v]), "speedup_vs_first": base / med}
        if not args.no_memory:
            row["peak_mib"] = peak_memory(v, child_argv) / 2**20
        res["variants"][v] = row
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    print(f"search step (arch + weights), batch {args.batch} at {args.size[0]}x{args.size[1]} on {args.device}, "
          f"{res['threads']} threads, amp={args.amp}, cuda_graphs={args.cuda_graphs}, {args.repeats} rounds")
    print("| variant | median s | min s | max s | speed-up vs " + args.variants[0] + " | peak MiB |")
    print("|---|---|---|---|---|---|")
    for v, r in res["variants"].items():
        mem = f"{r['peak_mib']:.0f}" if "peak_mib" in r else "-"
        print(f"| {v} | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['max_s']:.3f} | "
              f"{r['speedup_vs_first']:.2f} | {mem} |")
    return res


if __name__ == "__main__":
    main()
