"""Latency validation with and without speed anchors, side by side on the same networks and table.

Three variants of :func:`gasgnn.latency.timing.time_networks`, interleaved round by round on the same
networks: raw wall times, anchors timed as one call after each network block (before 2026-12-07) and
anchors timed as a block of :data:`~gasgnn.latency.timing.ANCHOR_CALLS` calls (today's); each compared
with the table's predictions (docs/latency.md, "Speed anchors").

    python benchmarks/bench_latency_anchors.py --table lat.json --seed 0 --rounds 5 --threads 2
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch

from gasgnn import SearchSpace
from gasgnn.latency import LatencyTable, agreement, draw_networks, piece_runner, time_networks
from gasgnn.latency.timing import ANCHOR_CALLS
from gasgnn.models import GASNet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", required=True, help="a latency table of the default space (gasgnn latency measure)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[180, 240, 360, 480], help="input sizes as H W pairs")
    ap.add_argument("--n", type=int, default=10, help="networks spanning the latency range")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (each times every variant)")
    ap.add_argument("--calls", type=int, default=3, help="calls per network per round")
    ap.add_argument("--anchors", type=int, default=8, help="costliest entries timed as speed anchors")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    space, table = SearchSpace(), LatencyTable.load(args.table)
    sizes = list(zip(args.sizes[::2], args.sizes[1::2]))
    variants = {"raw": {}, "anchored, one call": {"anchor_calls": 1},
                f"anchored, block of {ANCHOR_CALLS}": {"anchor_calls": ANCHOR_CALLS}}
    for size in sizes:
        sp = space.replace(input_size=size)
        table.ensure(sp, heads=("aspp",), measure_missing=True)
        gens = draw_networks(table, sp, args.n, near_n=0, seed=args.seed)[0]  # spanning the latency range
        keys = {k for g in gens for k, _ in table.genotype_keys(g, space, size, "aspp", 128)}
        table.ensure_keys(list(keys), measure_missing=True)
        anchors = sorted(keys, key=lambda k: -table[k])[: args.anchors]
        refs = [(piece_runner(k, torch.device("cpu"), torch.float32), table[k]) for k in anchors]
        x = torch.randn(1, 3, *size)
        nets = [GASNet(g, space, head="aspp").eval() for g in gens]
        calls = [lambda net=net, x=x: net(x) for net in nets]
        times: dict[str, list[list[float]]] = {v: [[] for _ in nets] for v in variants}
        speeds: dict[str, list[float]] = {v: [] for v in variants}
        for r in range(args.rounds):
            for v, kw in variants.items():  # interleaved: a burst of load hits every variant alike
                (ms,) = time_networks(calls, warmup=1 if r == 0 else 0, repeats=args.calls, rounds=1,
                                      anchors=refs if kw else (), speeds=speeds[v], **kw)
                for i, t in enumerate(ms):
                    times[v][i].append(t)
        pred = [table.predict(g, "aspp", space, size, 128, raw=True) for g in gens]
        for v in variants:
            meas = [statistics.median(t) for t in times[v]]
            a = agreement(pred, meas)
            within = float(np.mean(np.abs(np.array(pred) - np.array(meas)) <= 0.1 * np.array(meas)))
            print(f"{size[0]}x{size[1]} {v:20s} speed {statistics.median(speeds[v]):.2f} spearman {a['spearman']:.3f} "
                  f"MAPE {a['mape']:.1f} % bias {a['bias']:+.1f} % within +-10 % {100 * within:.0f} %", flush=True)


if __name__ == "__main__":
    main()
