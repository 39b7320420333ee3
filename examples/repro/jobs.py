"""Resumable subprocess jobs of the reproduction: ``python -m gasgnn search|train|eval``.

A job is done when its ``done`` file exists, and that file is written only after every one of its
commands has succeeded (a job killed between training and evaluation runs again; its training resumes
from ``last.pt``). Searches resume from ``checkpoint.pt``; a random search keeps no checkpoint and
starts over (``--overwrite``) when it was interrupted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from gasgnn.utils import write_json


@dataclass
class Job:
    """One unit of work: ``cmds`` in order, each printing one JSON object (``--json``).

    Args:
        name (str): Log name (``OUT/logs/NAME.log``).
        cmds (list): Commands; the first gets ``--resume`` when ``resume_flag`` exists, ``--overwrite``
            when ``restart_flag`` exists without ``done``.
        done (Path): Written last: ``{key: JSON output}`` of every command.
        keys (list): One key per command.
    """

    name: str
    cmds: list[list[str]]
    done: Path
    keys: list[str]
    resume_flag: Path | None = None
    restart_flag: Path | None = None
    env: dict[str, str] = field(default_factory=dict)


def gasgnn_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "gasgnn", *args]


def _last_json(stdout: str) -> dict:
    start = 0 if stdout.startswith("{") else stdout.rindex("\n{") + 1
    return json.loads(stdout[start:])


def run_job(job: Job, log_dir: Path, threads: int) -> str | None:
    """Runs ``job`` unless done; returns an error line or :obj:`None`."""
    if job.done.is_file():
        return None
    # GASGNN_THREADS fixes the commands' --threads: left to 'auto', two jobs that start together on an idle
    # machine each take both cores and the four spinning threads run several times slower than two
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "GASGNN_THREADS": str(threads), **job.env}
    first = list(job.cmds[0])
    if job.resume_flag is not None and job.resume_flag.is_file():
        first.append("--resume")
    elif job.restart_flag is not None and job.restart_flag.exists():
        first.append("--overwrite")
    results, t0 = {}, time.perf_counter()
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{job.name}.log", "a") as log:
        for key, cmd in zip(job.keys, [first, *job.cmds[1:]]):
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
            log.write(r.stdout)
            if r.returncode != 0:
                return f"{job.name}: exit {r.returncode} (see {log_dir / (job.name + '.log')})"
            results[key] = _last_json(r.stdout)
    results["wall_minutes"] = (time.perf_counter() - t0) / 60
    write_json(job.done, results)
    print(f"  {job.name}: {results['wall_minutes']:.1f} min", flush=True)
    return None


def run_jobs(jobs: Sequence[Job], n: int, log_dir: Path, threads: int, title: str) -> None:
    """Runs the unfinished ``jobs`` ``n`` at a time; exits with every failure named after the rest finish."""
    todo = [j for j in jobs if not j.done.is_file()]
    print(f"[{title}] {len(jobs) - len(todo)} of {len(jobs)} done, running {len(todo)}", flush=True)
    if not todo:
        return
    with ThreadPoolExecutor(max_workers=n) as pool:
        errors = [e for e in pool.map(lambda j: run_job(j, log_dir, threads), todo) if e]
    if errors:
        sys.exit("failed jobs:\n  " + "\n  ".join(errors))


@dataclass(frozen=True)
class Budget:
    """A training budget, named ``HEAD<channels>_e<epochs>`` (e.g. ``simple64_e6``).

    Args:
        head (str): Head of every trained network.
        head_channels (int): Its width.
        epochs (int): Training epochs.
    """

    head: str
    head_channels: int
    epochs: int

    @property
    def name(self) -> str:
        return f"{self.head}{self.head_channels}_e{self.epochs}"

    @classmethod
    def parse(cls, text: str) -> Budget:
        head, _, ep = text.partition("_e")
        digits = len(head) - len(head.rstrip("0123456789"))
        if not digits or not ep.isdigit() or digits == len(head):
            raise ValueError(f"--budgets: {text!r} is not HEAD<channels>_e<epochs>, e.g. simple64_e6")
        return cls(head[:-digits], int(head[-digits:]), int(ep))


def data_args(args) -> list[str]:
    """The data and device options of every command (the device stage keeps the decoded data on its device)."""
    keep = getattr(args, "keep_on", None)
    return ["--data", args.data, *(["--root", args.root] if args.root else []), "--workers", "0",
            *(["--data-arg", f"keep_on={keep}"] if keep else []), "--device", getattr(args, "device", "cpu")]


def search_job(args, run: Path, extra: Sequence[str], seed: int) -> Job:
    """A ``gasgnn search`` of the protocol's space and search budget, writing ``run``."""
    cmd = gasgnn_cmd(
        "search", *data_args(args), "--num-cells", str(args.num_cells), "--channels", str(args.channels),
        "--input-size", *map(str, args.size), "--crop", *map(str, args.crop),
        "--latency-table", str(args.out / "latency_table.json"), "--batch-size", str(args.batch_size),
        "--seed", str(seed), "--out", str(run), "--no-figures", "--json", *extra)
    random = "--random" in extra  # keeps no checkpoint; a search killed before its first one starts over
    return Job(run.name, [cmd], run / "result.json", ["search"],
               resume_flag=None if random else run / "checkpoint.pt", restart_flag=run)


def train_job(args, out_dir: Path, genotype: Path, budget: Budget, seed: int) -> Job:
    """Trains ``genotype`` from scratch with ``budget`` and evaluates it on the test split."""
    cmd = gasgnn_cmd(
        "train", "--genotype", str(genotype), *data_args(args), "--out", str(out_dir), "--epochs",
        str(budget.epochs), "--batch-size", "4", "--lr", str(args.lr), "--warmup-iters", "20",
        "--crop", *map(str, args.train_crop), "--scale-range", *map(str, args.scale_range),
        "--val-size", *map(str, args.size), "--head", budget.head, "--head-channels", str(budget.head_channels),
        "--seed", str(seed), "--no-progress", "--json",
        *(["--max-iters", str(args.train_max_iters)] if args.train_max_iters else []))
    ev = gasgnn_cmd("eval", "--checkpoint", str(out_dir / "last.pt"), *data_args(args), "--split",
                    args.test_split, "--size", *map(str, args.size), "--no-progress", "--json")
    return Job(f"{out_dir.parent.name}_{out_dir.name}", [cmd, ev], out_dir / "result.json", ["train", "eval"],
               resume_flag=out_dir / "last.pt", restart_flag=out_dir)  # killed before its first epoch: over
