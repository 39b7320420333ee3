"""Cost of the graph-guided module relative to one supernet search step.

For each guide, times ``alpha' = guide(alpha, graph)`` plus its backward, and one supernet step
(forward + cross-entropy + backward) at the same space, and reports the ratio (median over rounds
that interleave the two timings, so a shared machine's load hits both alike). Target: the default
guide (gcn_sim) costs under 2% of a step.

    python benchmarks/bench_ggm.py                       # default space, batch 2 at 180x240, CPU
    python benchmarks/bench_ggm.py --guides slot_sim,gcn_sim,gat,fc,none --json
    python benchmarks/bench_ggm.py --device cuda --step-repeats 20
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from gasgnn import SearchSpace, Supernet
from gasgnn.ggm import build_guide


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn: Callable[[], None], repeats: int, warmup: int, device: torch.device) -> float:
    """Median wall time of ``fn`` in seconds over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(0)
    space = SearchSpace(input_size=tuple(args.size))
    net = Supernet(space).to(device)
    graph = net.arch_graph()
    x = torch.randn(args.batch, space.in_channels, *args.size, device=device)
    y = torch.randint(0, space.num_classes, (args.batch, *args.size), device=device)

    def step() -> None:
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()

    guides = {name: build_guide(name, space).to(device) for name in args.guides}
    grad = torch.randn_like(net.alpha)

    def ggm_fn(guide: torch.nn.Module) -> Callable[[], None]:
        def ggm() -> None:
            net.alpha.grad = None
            guide.zero_grad(set_to_none=True)
            out = guide(net.alpha, graph)
            if out.requires_grad:
                out.backward(grad)

        return ggm

    # The machine may be shared: interleave step and guide timings round by round, so that each
    # ratio compares times taken under the same load, and report the median ratio.
    step()  # warm-up (allocator, lazy initialisation)
    t_steps: list[float] = []
    t_ggm: dict[str, list[float]] = {n: [] for n in guides}
    ratios: dict[str, list[float]] = {n: [] for n in guides}
    for _ in range(args.step_repeats):
        ts = median_time(step, 1, 0, device)
        t_steps.append(ts)
        for name, guide in guides.items():
            tg = median_time(ggm_fn(guide), args.ggm_repeats, 3, device)
            t_ggm[name].append(tg)
            ratios[name].append(tg / ts)

    rows = []
    for name, guide in guides.items():
        rows.append({
            "guide": name,
            "params": sum(p.numel() for p in guide.parameters()),
            "ggm_ms": 1e3 * statistics.median(t_ggm[name]),
            "step_ms": 1e3 * statistics.median(t_steps),
            "fraction_pct": 100.0 * statistics.median(ratios[name]),
            "fraction_pct_max": 100.0 * max(ratios[name]),
        })
    return {
        "benchmark": "ggm_fraction_of_supernet_step",
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "space": {"num_cells": space.num_cells, "edges_per_cell": space.edges_per_cell,
                  "num_ops": space.num_ops, "arch_nodes": space.num_arch_nodes,
                  "arch_relations": int(graph.edge_index.size(1))},
        "batch": args.batch,
        "size": list(args.size),
        "step_repeats": args.step_repeats,
        "ggm_repeats": args.ggm_repeats,
        "target_pct": 2.0,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--guides", default="slot_sim,gcn_sim,gat,fc", type=lambda s: [g for g in s.split(",") if g],
                   help="comma-separated guide specs (default: slot_sim,gcn_sim,gat,fc)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--size", type=int, nargs=2, default=[180, 240], metavar=("H", "W"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--step-repeats", type=int, default=5,
                   help="rounds, each one timed supernet step (default: 5)")
    p.add_argument("--ggm-repeats", type=int, default=30,
                   help="timed guide calls per round, median taken (default: 30)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    res = run(args)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"device={res['device']} torch={res['torch']} threads={res['threads']} batch={res['batch']} "
          f"size={res['size'][0]}x{res['size'][1]} arch nodes={res['space']['arch_nodes']} "
          f"relations={res['space']['arch_relations']}")
    print(f"{'guide':<14}{'params':>8}{'GGM fwd+bwd ms':>16}{'step ms':>11}{'fraction':>10}{'max':>9}"
          "  under 2%")
    for r in res["rows"]:
        ok = "yes" if r["fraction_pct"] < res["target_pct"] else "NO"
        print(f"{r['guide']:<14}{r['params']:>8}{r['ggm_ms']:>16.3f}{r['step_ms']:>11.1f}"
              f"{r['fraction_pct']:>9.3f}%{r['fraction_pct_max']:>8.3f}%  {ok}")


if __name__ == "__main__":
    main()
