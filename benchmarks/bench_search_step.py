"""Time and peak memory of one GAS search step (architecture update + weight update).

Default: the default SearchSpace, batch 2 at 180x240, gcn_sim guide, a latency table with synthetic
entries (its values do not change the cost of the step). Peak memory is the process's resident-set
high-water mark (``ru_maxrss``) measured in a fresh subprocess per configuration, minus the RSS before
the first step, since torch's CPU allocations are invisible to tracemalloc.

    python benchmarks/bench_search_step.py [--size 180 240] [--batch 2] [--steps 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _child(args: argparse.Namespace) -> dict:
    import torch

    from gasgnn import SearchSpace
    from gasgnn.latency import LatencyTable
    from gasgnn.search import SearchConfig, Searcher

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    space = SearchSpace(input_size=tuple(args.size))
    keys = LatencyTable().required_keys(space, heads=("aspp",))
    table = LatencyTable({k: 0.1 for k in keys})
    x = torch.randn(args.batch, 3, *args.size)
    y = torch.randint(0, space.num_classes, (args.batch, *args.size))
    cfg = SearchConfig(guide=args.guide, latency_weight=0.1, warmup_epochs=0)
    s = Searcher(space, cfg, lambda e: [], lambda e: [], table=table, progress=False)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    s.step((x, y), (x, y), 1.0)  # warm-up
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        s.step((x, y), (x, y), 1.0)
        times.append(time.perf_counter() - t)
    times.sort()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"guide": args.guide, "size": args.size, "batch": args.batch, "threads": torch.get_num_threads(),
            "step_s_median": times[len(times) // 2], "step_s_min": times[0], "step_s_max": times[-1],
            "peak_rss_mb": peak, "rss_before_mb": rss0, "step_peak_mb": peak - rss0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, nargs=2, default=[180, 240])
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--guide", default="gcn_sim")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(_child(args)))
        return
    cmd = [sys.executable, __file__, "--child", "--size", *map(str, args.size), "--batch", str(args.batch),
           "--steps", str(args.steps), "--guide", args.guide, "--threads", str(args.threads)]
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"search step (arch + weights), default space, batch {res['batch']} at "
              f"{res['size'][0]}x{res['size'][1]}, "
              f"{res['threads']} threads: median {res['step_s_median']:.2f} s (min {res['step_s_min']:.2f}, max "
              f"{res['step_s_max']:.2f}); peak RSS {res['peak_rss_mb']:.0f} MB ({res['step_peak_mb']:.0f} MB above "
              f"the idle process)")


if __name__ == "__main__":
    main()
