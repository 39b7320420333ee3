"""Validates the latency lookup table against measured end-to-end latencies of derived networks.

Measures (or completes) the table for the default search space at the CamVid search and training
resolutions on a latency backend, draws networks over the space's latency range and near a target, times
each derived GASNet twice (test and retest) and reports the table's Spearman and MAPE beside the machine's
retest agreement per input size (:func:`gasgnn.latency.validate`, as ``gasgnn latency validate``), with
the machine's load average before and after (compare runs only at a similar load).

Usage::

    python benchmarks/bench_latency_validate.py --table runs/latency/cpu.json --backend onnxruntime --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import torch

from gasgnn import SearchSpace
from gasgnn.latency import LatencyTable, validate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", default=None,
                   help="table file to use and complete (default: measured in memory)")
    p.add_argument("--sizes", type=int, nargs="+", default=[180, 240, 360, 480], metavar="H W",
                   help="input sizes as pairs H W (default: %(default)s)")
    p.add_argument("--n", type=int, default=20, help="networks over the latency range (default: %(default)s)")
    p.add_argument("--near-n", type=int, default=10, help="networks near the target (default: %(default)s)")
    p.add_argument("--backend", default=None, help="latency backend of a new table (default: the table's, or torch)")
    p.add_argument("--head", default="aspp", help="head (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=20, help="timed calls per network and series (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=5, help="round-robin passes per series (default: %(default)s)")
    p.add_argument("--max-load", type=float, default=None,
                   help="wait (up to --wait s) until the 1-minute load average is below this")
    p.add_argument("--wait", type=float, default=600,
                   help="longest wait for --max-load (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the full results as JSON")
    args = p.parse_args(argv)
    if len(args.sizes) % 2:
        p.error("--sizes takes pairs H W")
    sizes = [(args.sizes[i], args.sizes[i + 1]) for i in range(0, len(args.sizes), 2)]

    if args.max_load is not None:
        t_end = time.time() + args.wait
        while os.getloadavg()[0] > args.max_load and time.time() < t_end:
            time.sleep(5)
    space = SearchSpace()
    if args.table and os.path.exists(args.table):
        table = LatencyTable.load(args.table)
    else:
        table = LatencyTable(backend=args.backend or "torch")
    t0 = time.perf_counter()
    res = validate(table, space, sizes, n=args.n, near_n=args.near_n, head=args.head, seed=args.seed,
                   repeats=args.repeats, rounds=args.rounds, path=args.table, progress=not args.json,
                   backend=args.backend)
    res.update(wall_s=time.perf_counter() - t0, torch=torch.__version__, python=platform.python_version(),
               device=table.meta["device_name"], table_entries=len(table))
    if args.json:
        json.dump(res, sys.stdout, indent=2)
        print()
        return 0
    print(f"{res['device']}, torch {res['torch']}, {res['threads']} threads, {args.n} networks, "
          f"load {res['loadavg_before'][0]:.2f} -> {res['loadavg_after'][0]:.2f}, {res['wall_s']:.0f} s")
    for r in res["sizes"]:
        H, W = r["input_size"]
        print(f"  {H}x{W}: spearman {r['spearman']:.3f} (retest {r['retest_spearman']:.3f})  MAPE {r['mape']:.1f}% "
              f"(retest {r['retest_mape']:.1f}%)  band spearman {r['band_spearman']:.3f} (retest "
              f"{r['band_retest_spearman']:.3f})  measured {min(r['measured_ms']):.1f}-{max(r['measured_ms']):.1f} ms"
              f"  {r['verdict']['text']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
