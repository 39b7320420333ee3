"""Data-parallel search step: W processes (gloo or NCCL) against one process, same global batch.

Each configuration runs in fresh processes launched as ``torchrun`` would (``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``, ...): a full GAS search step (architecture update + weight update, gradients averaged
over the ranks) on random tensors, default SearchSpace, a latency table with synthetic entries. Reports
rank 0's median step time, the time spent in the gradient all-reduces, and the speed-up over one
process with the whole global batch. On the CPU, give every configuration the same total number of
threads (``--threads`` is the total; each of W processes gets ``threads // W``).

    python benchmarks/bench_distributed.py [--world 1 2] [--global-batch 4] [--size 180 240] [--steps 4]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time


def _worker(args: argparse.Namespace) -> None:
    import torch

    from gasgnn import SearchSpace
    from gasgnn import distributed as dist
    from gasgnn.latency import LatencyTable
    from gasgnn.search import SearchConfig, Searcher

    dist.init_distributed("auto")
    W, r = dist.world_size(), dist.rank()
    torch.set_num_threads(max(1, args.threads // W))
    device = dist.resolve_device("cuda" if torch.cuda.is_available() else "cpu")
    space = SearchSpace(input_size=tuple(args.size))
    keys = LatencyTable().required_keys(space, heads=("aspp",))
    table = LatencyTable({k: 0.1 + 1e-3 * i for i, k in enumerate(keys)})  # distinct: a table must rank ops
    b = args.global_batch // W
    gen = torch.Generator().manual_seed(r)
    x = torch.randn(b, 3, *args.size, generator=gen)
    y = torch.randint(0, space.num_classes, (b, *args.size), generator=gen)
    cfg = SearchConfig(latency_weight=0.1, warmup_epochs=0, sync_bn=args.sync_bn)
    s = Searcher(space, cfg, lambda e: [], lambda e: [], table=table, device=device, progress=False)
    # Time the gradient all-reduces separately (the only communication in a step without SyncBN).
    comm = [0.0]
    inner = dist.all_reduce_grads

    def timed(params, average=True):
        t = time.perf_counter()
        inner(params, average)
        comm[0] += time.perf_counter() - t

    import gasgnn.search as search_mod

    search_mod.dist.all_reduce_grads = timed
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    s.step((x, y), (x, y), 1.0)  # warm-up
    times, comms = [], []
    for _ in range(args.steps):
        comm[0] = 0.0
        dist.barrier()
        sync()
        t = time.perf_counter()
        s.step((x, y), (x, y), 1.0)
        sync()
        times.append(time.perf_counter() - t)
        comms.append(comm[0])
    s.check_sync(weights=True)
    if r == 0:
        print(json.dumps({"world": W, "per_rank_batch": b, "threads_per_rank": max(1, args.threads // W),
                          "step_s": statistics.median(times), "allreduce_s": statistics.median(comms),
                          "device": str(device)}))
    dist.cleanup()


def _free_port() -> int:
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def _run(world: int, args: argparse.Namespace) -> dict:
    port = str(_free_port())
    cmd = [sys.executable, __file__, "--worker", "--global-batch", str(args.global_batch), "--size",
           *map(str, args.size), "--steps", str(args.steps), "--threads", str(args.threads),
           *(["--sync-bn"] if args.sync_bn else [])]
    procs = []
    for r in range(world):
        env = {**os.environ, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": str(world),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
               "OMP_NUM_THREADS": str(max(1, args.threads // world))}
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True))
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        sys.exit(f"world {world}: a rank failed")
    return json.loads(outs[0].strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--world", type=int, nargs="+", default=[1, 2], help="process counts to compare")
    p.add_argument("--global-batch", type=int, default=4)
    p.add_argument("--size", type=int, nargs=2, default=[180, 240])
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="total CPU threads per config")
    p.add_argument("--sync-bn", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        _worker(args)
        return
    rows = [_run(w, args) for w in args.world]
    base = next((r["step_s"] for r in rows if r["world"] == 1), rows[0]["step_s"])
    for r in rows:
        r["speedup_vs_1"] = base / r["step_s"]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"global batch {args.global_batch} at {args.size[0]}x{args.size[1]}, {args.threads} threads in total")
    print("| processes | batch/rank | step (s) | all-reduce (s) | speed-up |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['world']} | {r['per_rank_batch']} | {r['step_s']:.2f} | {r['allreduce_s']:.3f} | "
              f"{r['speedup_vs_1']:.2f}x |")


if __name__ == "__main__":
    main()
