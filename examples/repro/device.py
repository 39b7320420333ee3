"""The protocol for one scarce device window (a GPU lent for one command of at most 540 s): many jobs at
once on one device, planned to end within ``--budget-s``, results written after every job.

``python examples/reproduce_paper.py --stage device --device cuda --budget-s 480 --jobs 6 ...``

- **Chains.** One chain per (guide, seed): the search, then the training of its network (test mIoU). Chains
  run ``--jobs`` at a time as separate processes on the one device; the GPU is far from full with one
  small supernet, so several share it. The data is decoded once per process and kept on the device
  (``--data-arg keep_on=cuda``), so no loader worker decodes JPEGs in the window.
- **Plan.** Each chain's seconds are estimated from a cost model (process start, search steps, training
  iterations, test images; :class:`Costs`), whose per-step and per-iteration times are taken from the
  finished chains of earlier runs when there are any (so a second window plans from measured times). The
  chains are taken seed-major (the smallest useful run, every guide at seed 0, first) while the estimated
  makespan on ``--jobs`` slots, shared by ``--gain`` times the work of one, fits the budget.
  ``--plan`` prints the plan and exits (it needs no device).
- **Results after every job.** ``OUT/progress.json`` is rewritten atomically after every finished job:
  every chain's status, its figures and the measured seconds. A run killed at the window's end leaves it
  valid; the next run skips the finished jobs and resumes the searches from their checkpoints.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gasgnn.utils import read_json, write_json
from repro.jobs import Budget, Job, run_job
from repro.protocol import gas_extra, search_dir, search_job, train_dir, train_job


@dataclass
class Costs:
    """The cost model of one chain (seconds).

    Args:
        start_s (float): Starting one ``python -m gasgnn`` process on the device (imports, CUDA context).
        step_s (float): One search step (architecture and weight update).
        iter_s (float): One training iteration.
        eval_s (float): One test image.
        table_s (float): Measuring the latency table at the start.
    """

    start_s: float
    step_s: float
    iter_s: float
    eval_s: float
    table_s: float

    @classmethod
    def defaults(cls, device: str) -> Costs:
        """Prior guesses for ``device`` (replaced by measured times once a run has finished chains):
        an H200 for ``cuda`` (a small 8-cell supernet at 360x480 is launch-bound there), the 2-core CPU
        otherwise."""
        if device.startswith("cuda"):
            return cls(start_s=15.0, step_s=0.25, iter_s=0.05, eval_s=0.02, table_s=60.0)
        return cls(start_s=5.0, step_s=2.0, iter_s=0.5, eval_s=0.1, table_s=120.0)


def chains(args, guides: list[str], seeds: list[int], budget: Budget) -> list[tuple[str, list[Job]]]:
    """``(name, [search, training])`` per guide and seed, seed-major."""
    out = []
    for s in seeds:
        for g in guides:
            d = search_dir(args, g, s)
            out.append((f"{g}_s{s}", [search_job(args, d, gas_extra(args, g), s),
                                      train_job(args, train_dir(args, budget, g, s), d / "genotype.json", budget, s)]))
    return out


def train_iters(args, budget: Budget, n_train: int) -> int:
    iters = budget.epochs * max(1, n_train // 4)  # batch 4, drop_last
    return min(iters, args.train_max_iters) if args.train_max_iters else iters


def estimate(args, costs: Costs, budget: Budget, n_train: int, n_test: int) -> float:
    """Seconds of one chain: two searches' worth of steps per step of the weight half (the architecture
    step runs after the warm-up), a training and a test evaluation, and three process starts."""
    steps = args.epochs * args.steps_per_epoch + (args.epochs - args.warmup_epochs) * args.steps_per_epoch
    return 3 * costs.start_s + steps * costs.step_s + train_iters(args, budget, n_train) * costs.iter_s \
        + n_test * costs.eval_s


def measured_costs(args, prior: Costs, budget: Budget, n_train: int) -> tuple[Costs, int]:
    """The prior with ``step_s`` and ``iter_s`` replaced by the medians of finished chains' measured times
    (start-up included, so they err long); the number of chains they came from."""
    steps = args.epochs * args.steps_per_epoch + (args.epochs - args.warmup_epochs) * args.steps_per_epoch
    step, it = [], []
    for p in sorted((args.out / "search").glob("*_s*/result.json")):
        step.append(read_json(p)["search"]["wall_seconds"] / steps)
    for p in sorted((args.out / "train" / budget.name).glob("*_s*/result.json")):
        it.append(read_json(p)["train"]["seconds"] / train_iters(args, budget, n_train))
    c = Costs(prior.start_s, statistics.median(step) if step else prior.step_s,
              statistics.median(it) if it else prior.iter_s, prior.eval_s, prior.table_s)
    return c, min(len(step), len(it))


def plan(args, items: list[tuple[str, list[Job]]], est_s: float, jobs: int, gain: float) -> list[dict]:
    """Which chains fit the budget: seed-major, while the estimated makespan (the work of the chosen chains
    over ``min(jobs, gain)`` times one chain's pace, plus the latency table) stays within ``--budget-s``."""
    rows, total, table = [], 0.0, 0.0 if (args.out / "latency_table.json").is_file() else args.costs.table_s
    for name, links in items:
        done = all(j.done.is_file() for j in links)
        cost = 0.0 if done else est_s
        makespan = table + (total + cost) / min(jobs, gain)
        fits = done or makespan <= args.budget_s
        if fits:
            total += cost
        rows.append({"chain": name, "done": done, "estimate_s": cost, "makespan_s": table + total / min(jobs, gain),
                     "selected": fits})
    return rows


def print_plan(rows: list[dict], costs: Costs, calibrated: int, args) -> None:
    src = f"measured on {calibrated} finished chains" if calibrated else f"prior guesses for {args.device}"
    print(f"device plan: budget {args.budget_s:.0f} s, {args.jobs} processes at once (x{args.gain:g} the pace of "
          f"one), costs {src}: start {costs.start_s:.0f} s, search step {costs.step_s:.3f} s, training iteration "
          f"{costs.iter_s:.3f} s, test image {costs.eval_s:.3f} s, latency table {costs.table_s:.0f} s")
    print(f"{'chain':<24} {'status':<9} {'est s':>7} {'makespan s':>11}")
    for r in rows:
        status = "done" if r["done"] else ("run" if r["selected"] else "later")
        print(f"{r['chain']:<24} {status:<9} {r['estimate_s']:>7.0f} {r['makespan_s']:>11.0f}")
    n = sum(r["selected"] and not r["done"] for r in rows)
    print(f"{n} chain(s) to run, {sum(not r['selected'] for r in rows)} left for a later window")


def progress(args, items: list[tuple[str, list[Job]]], t0: float) -> dict:
    """``OUT/progress.json``: every chain's jobs, their status and figures (rewritten after every job)."""
    out = {"device": args.device, "budget_s": args.budget_s, "elapsed_s": time.perf_counter() - t0,
           "date": time.strftime("%Y-%m-%d %H:%M:%S"), "chains": {}}
    for name, links in items:
        row = {}
        for key, j in zip(("search", "train"), links):
            if j.done.is_file():
                r = read_json(j.done)
                row[key] = {"status": "done", "minutes": r.get("wall_minutes")}
                if key == "search":
                    row[key]["predicted_ms"] = r["search"]["predicted_latency_ms"]
                else:
                    row[key].update(test_miou=100 * r["eval"]["miou"], train_seconds=r["train"]["seconds"])
            else:
                row[key] = {"status": "pending"}
        out["chains"][name] = row
    write_json(args.out / "progress.json", out)
    return out


def run_chains(args, items: list[tuple[str, list[Job]]], selected: set[str], log_dir: Path) -> dict:
    """Runs the selected chains ``args.jobs`` at a time; ``progress.json`` after every job."""
    t0, lock = time.perf_counter(), threading.Lock()
    deadline = t0 + args.budget_s
    errors = []

    def chain(links: list[Job]) -> None:
        for j in links:
            if time.perf_counter() > deadline:  # planned to fit; never start past the window
                return
            err = run_job(j, log_dir, args.threads)
            with lock:
                progress(args, items, t0)
                if err:
                    errors.append(err)
            if err:
                return

    progress(args, items, t0)
    todo = [links for name, links in items if name in selected and not all(j.done.is_file() for j in links)]
    print(f"[device] running {len(todo)} chain(s), {args.jobs} at a time", flush=True)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(chain, todo))
    res = progress(args, items, t0)
    if errors:
        sys.exit("failed jobs:\n  " + "\n  ".join(errors))
    return res
