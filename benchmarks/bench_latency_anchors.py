"""Latency validation with and without speed anchors, side by side on the same networks and table.

Each network's block of calls is followed by one timing of the anchors (the networks' costliest table
entries); the raw medians and the medians divided by the concurrent speed (anchor time / table time) are
compared with the table's predictions (docs/latency.md, "Speed anchors").

    OMP_NUM_THREADS=1 python benchmarks/bench_latency_anchors.py --table lat.json --seed 0 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from gasgnn import SearchSpace
from gasgnn.latency import LatencyTable, agreement, draw_networks, piece_runner
from gasgnn.models import GASNet


def _per_call(fn, n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) * 1e3 / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", required=True, help="a latency table of the default space (gasgnn latency measure)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[180, 240, 360, 480], help="input sizes as H W pairs")
    ap.add_argument("--n", type=int, default=10, help="networks spanning the latency range")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=5, help="round-robin passes")
    ap.add_argument("--calls", type=int, default=3, help="calls per network per round")
    ap.add_argument("--anchors", type=int, default=8, help="costliest entries timed as speed anchors")
    args = ap.parse_args()
    space, table = SearchSpace(), LatencyTable.load(args.table)
    sizes = list(zip(args.sizes[::2], args.sizes[1::2]))
    for size in sizes:
        sp = space.replace(input_size=size)
        table.ensure(sp, heads=("aspp",), measure_missing=True)
        gens = draw_networks(table, sp, args.n, near_n=0, seed=args.seed)[0]  # spanning the latency range
        keys = {k for g in gens for k, _ in table.genotype_keys(g, space, size, "aspp", 128)}
        table.ensure_keys(list(keys), measure_missing=True)
        anchors = sorted(keys, key=lambda k: -table[k])[: args.anchors]
        runs = [(piece_runner(k, torch.device("cpu"), torch.float32), table[k]) for k in anchors]
        nets = [GASNet(g, space, head="aspp").eval() for g in gens]
        x = torch.randn(1, 3, *size)
        raw: list[list[float]] = [[] for _ in nets]
        anchored: list[list[float]] = [[] for _ in nets]
        with torch.inference_mode():
            for net in nets:
                net(x)
            for fn, _ in runs:
                fn()
            for _ in range(args.rounds):
                for i, net in enumerate(nets):
                    t = _per_call(lambda net=net, x=x: net(x), args.calls)
                    speed = statistics.median(_per_call(fn, 1) / ms for fn, ms in runs)
                    raw[i].append(t)
                    anchored[i].append(t / speed)
        pred = [table.predict(g, "aspp", space, size, 128, raw=True) for g in gens]
        for name, vals in (("raw", raw), ("anchored", anchored)):
            meas = [statistics.median(v) for v in vals]
            a = agreement(pred, meas)
            within = float(np.mean(np.abs(np.array(pred) - np.array(meas)) <= 0.1 * np.array(meas)))
            print(f"{size[0]}x{size[1]} {name:8s} spearman {a['spearman']:.3f} pearson {a['pearson']:.3f} "
                  f"MAPE {a['mape']:.1f} % bias {a['bias']:+.1f} % within +-10 % {100 * within:.0f} %")


if __name__ == "__main__":
    main()
