"""The guide study of docs/ggm.md ("A guide that shares between slots"): candidate guides searched on
CamVid at the reproduction protocol's search setting, one search at a time, and their diagnostics.

Every search is ``gasgnn search`` with the flags of ``examples/reproduce_paper.py``'s searches (8 cells,
C = 8, laid out at 180x240, 90x120 crops, batch 4, 6 epochs of 20 steps with 2 warm-up epochs, Adam on
alpha at 3e-3, log latency loss, one latency table measured once) and ``--latency-weight`` (0.1 in the
protocol; 1 is the stress setting where ``gcn_sim`` collapses onto a hub). Finished runs are skipped, so
the command resumes. ``--json`` collects one record per run (final diagnostics, their per-epoch values,
supernet val mIoU, predicted latency, the command) and the table of docs/ggm.md is printed from it.

    python benchmarks/ggm_study.py --root /path/to/CamVid --out runs/ggm_study --candidates slot_sim gcn_sim \\
        --seeds 0 1 2 3 4 --json docs/ggm_study.json
    python benchmarks/ggm_study.py --out runs/ggm_study --collect-only --json docs/ggm_study.json
    python benchmarks/ggm_study.py --table docs/ggm_study.json        # the table, from the records alone
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

#: name -> (guide, guide args, what it tries)
CANDIDATES: dict[str, tuple[str, list[str], str]] = {
    "gcn_sim": ("gcn_sim", [], "the GAS algebra, the previous default"),
    "gcn_sim_bound": ("gcn_sim", ["bounded=True"], "+ the bounded update (message relative to alpha)"),
    "gcn_sim_lgamma": ("gcn_sim", ["bounded=True", "learn_gamma=True"], "+ bound, learned gamma in (0, 1)"),
    "gcn_sim_balance": ("gcn_sim", ["balance_weight=1.0"], "+ load-balancing term on the attention"),
    "gcn_sim_entropy": ("gcn_sim", ["entropy_weight=0.1"], "+ attention-entropy bonus"),
    "gcn_sim_wdecay": ("gcn_sim", ["value_decay=0.01"], "+ weight decay on W only"),
    "key": ("slot_sim", ["normalize='key'", "sinkhorn_iters=0", "num_positions=0", "bounded=False"],
            "normalised key only"),
    "sinkhorn": ("slot_sim", ["normalize='none'", "num_positions=0", "bounded=False"], "Sinkhorn attention only"),
    "prior": ("slot_sim", ["normalize='none'", "sinkhorn_iters=0", "bounded=False"], "slot-identity prior only"),
    "slot_sim_nobound": ("slot_sim", ["bounded=False"], "key + Sinkhorn + prior, no bound"),
    "slot_sim_noprior": ("slot_sim", ["num_positions=0"], "key + Sinkhorn + bound, no prior"),
    "slot_sim_nosinkhorn": ("slot_sim", ["sinkhorn_iters=0"], "key + prior + bound, no Sinkhorn"),
    "slot_sim": ("slot_sim", [], "key + Sinkhorn + prior + bound: the new default"),
}
DIAG = ("guide_distinct_sources", "guide_attention_entropy", "guide_update_ratio")


def search_cmd(args: argparse.Namespace, name: str, seed: int, weight: float, run: Path) -> list[str]:
    guide, gargs, _ = CANDIDATES[name]
    return [sys.executable, "-m", "gasgnn", "search", "--data", "camvid", "--root", str(args.root), "--workers", "0",
            "--num-cells", "8", "--channels", "8", "--num-classes", "11", "--input-size", "180", "240",
            "--crop", "90", "120", "--latency-table", str(args.out / "latency_table.json"), "--batch-size", "4",
            "--seed", str(seed), "--latency-weight", f"{weight:g}", "--latency-form", "log", "--epochs", "6",
            "--warmup-epochs", "2", "--steps-per-epoch", "20", "--a-lr", "3e-3", "--threads", "1", "--no-figures",
            "--json", "--out", str(run), "--guide", guide, *[x for a in gargs for x in ("--guide-arg", a)]]


def run_dir(out: Path, name: str, weight: float, seed: int) -> Path:
    return out / f"{name}_w{weight:g}_s{seed}"


def record(run: Path, cmd: list[str], name: str, seed: int, weight: float) -> dict:
    """One run's record: final and per-epoch diagnostics, supernet val mIoU, predicted latency."""
    import csv

    rows = list(csv.DictReader(open(run / "metrics.csv")))
    summary = json.loads((run / "summary.json").read_text())
    epochs = [{k: round(float(r[k]), 5) for k in ("epoch", "val_miou", "expected_latency_ms", *DIAG)} for r in rows]
    shown = ["python" if c == sys.executable else c for c in cmd]
    shown = [("CAMVID" if c == str(cmd[cmd.index("--root") + 1]) else c) for c in shown]
    return {"run": run.name, "candidate": name, "seed": seed, "latency_weight": weight,
            "final": {k: epochs[-1][k] for k in DIAG}, "epochs": epochs,
            "supernet_val_miou": round(summary["supernet_miou"], 5),
            "predicted_latency_ms": round(summary["predicted_latency_ms"], 4),
            "search_seconds": round(sum(float(r["seconds"]) for r in rows), 1),
            "command": shlex.join(s.replace(str(run.parent), "OUT") for s in shown)}


def _ms(xs: list[float], digits: int = 2) -> str:
    if len(xs) == 1:
        return f"{xs[0]:.{digits}f}"
    return f"{statistics.fmean(xs):.{digits}f} ± {statistics.stdev(xs):.{digits}f}"


def table(records: list[dict]) -> str:
    """The markdown table of docs/ggm.md: one row per candidate and latency weight (mean ± sd over seeds)."""
    groups: dict[tuple[str, float], list[dict]] = {}
    for r in records:
        groups.setdefault((r["candidate"], r["latency_weight"]), []).append(r)
    lines = ["| candidate | what | λ | seeds | distinct sources / 14 | attention entropy | update ratio (max) "
             "| supernet val mIoU | predicted ms |", "|---|---|---|---|---|---|---|---|---|"]
    order = list(CANDIDATES)
    for (name, w), rs in sorted(groups.items(), key=lambda kv: (kv[0][1], order.index(kv[0][0]))):
        f = {k: [r["final"][k] for r in rs] for k in DIAG}
        seeds = ",".join(str(r["seed"]) for r in sorted(rs, key=lambda r: r["seed"]))
        lines.append(
            f"| {name} | {CANDIDATES[name][2]} | {w:g} | {seeds} "
            f"| {_ms(f['guide_distinct_sources'], 1)} | {_ms(f['guide_attention_entropy'])} "
            f"| {_ms(f['guide_update_ratio'])} ({max(f['guide_update_ratio']):.2f}) "
            f"| {_ms([100 * r['supernet_val_miou'] for r in rs], 1)} "
            f"| {_ms([r['predicted_latency_ms'] for r in rs])} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, default=os.environ.get("GASGNN_CAMVID"), help="CamVid root")
    p.add_argument("--out", type=Path, default=Path("runs/ggm_study"), help="study directory (resumed)")
    p.add_argument("--candidates", nargs="+", default=["slot_sim", "gcn_sim"], choices=list(CANDIDATES))
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--latency-weights", type=float, nargs="+", default=[0.1])
    p.add_argument("--json", type=Path, default=None, help="records file (merged with its earlier records)")
    p.add_argument("--collect-only", action="store_true", help="run nothing; collect the finished runs of --out")
    p.add_argument("--table", type=Path, default=None, help="print the table of a records file and exit")
    a = p.parse_args()
    if a.table is not None:
        print(table(json.loads(a.table.read_text())["records"]))
        return
    if not a.collect_only:
        if a.root is None or not Path(a.root).is_dir():
            sys.exit(f"--root: CamVid directory not found: {a.root}")
        a.out.mkdir(parents=True, exist_ok=True)
        if not (a.out / "latency_table.json").is_file():
            subprocess.run([sys.executable, "-m", "gasgnn", "latency", "measure", "--num-cells", "8", "--channels", "8",
                            "--num-classes", "11", "--input-size", "180", "240", "--sizes", "180", "240", "--heads",
                            "aspp", "--head-channels", "128", "--threads", "1", "--out",
                            str(a.out / "latency_table.json")], check=True)
    old = json.loads(a.json.read_text())["records"] if a.json is not None and a.json.is_file() else []
    records = {r["run"]: r for r in old}
    for w in a.latency_weights:
        for seed in a.seeds:
            for name in a.candidates:
                run = run_dir(a.out, name, w, seed)
                cmd = search_cmd(a, name, seed, w, run)
                if not (run / "summary.json").is_file():
                    if a.collect_only:
                        continue
                    print(f"search {run.name}", flush=True)
                    flag = ["--resume"] if (run / "checkpoint.pt").is_file() else []
                    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "GASGNN_THREADS": "1"}
                    subprocess.run(cmd + flag, check=True, env=env, stdout=subprocess.DEVNULL)
                records[run.name] = record(run, cmd, name, seed, w)
    order = list(CANDIDATES)
    out = sorted(records.values(), key=lambda r: (r["latency_weight"], order.index(r["candidate"]), r["seed"]))
    if a.json is not None:
        from gasgnn.utils import write_json

        write_json(a.json, {"setting": "examples/reproduce_paper.py search flags; see each record's command",
                            "records": out})
    print(table(out))


if __name__ == "__main__":
    main()
