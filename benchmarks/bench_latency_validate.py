"""Validates the latency lookup table against measured end-to-end latencies of random derived networks.

Measures (or completes) the table for the default search space at the CamVid search and training
resolutions, samples random genotypes, times each derived GASNet and reports Pearson, Spearman and MAPE
per input size, with the machine's load average before and after (other processes on a shared machine
perturb timings: compare runs only at a similar load).

Usage::

    python benchmarks/bench_latency_validate.py --table runs/latency/cpu.json --json
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
    p.add_argument("--n", type=int, default=20, help="random networks (default: %(default)s)")
    p.add_argument("--head", default="aspp", help="head (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=15, help="timed calls per network (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=3, help="round-robin passes (default: %(default)s)")
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
    table = LatencyTable.load(args.table) if args.table and os.path.exists(args.table) else LatencyTable()
    t0 = time.perf_counter()
    res = validate(table, space, sizes, n=args.n, head=args.head, seed=args.seed, repeats=args.repeats,
                   rounds=args.rounds, path=args.table, progress=not args.json)
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
        print(f"  {H}x{W}: pearson {r['pearson']:.3f}  spearman {r['spearman']:.3f}  MAPE {r['mape']:.1f}%  "
              f"bias {r['bias']:+.1f}%  measured {min(r['measured_ms']):.1f}-{max(r['measured_ms']):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
