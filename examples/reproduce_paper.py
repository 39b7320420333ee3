"""Reproduce the GAS supplement's comparisons at CPU scale on CamVid (docs/results.md, sections 3-5).

One command runs every experiment, with ``--seeds`` seeds each, the same latency table, latency weight and
budgets, then times all derived networks side by side and writes a report:

    python examples/reproduce_paper.py --root /data/CamVid --out runs/repro

1. Guidance: GAS searches with the ``gcn_sim`` graph-guided module, a fully connected guide (``fc``) and no
   guide (``none``) at latency weight ``--weight``, and random search, twice: with the same number of
   weight-training steps as a GAS search, and with ``--random-long-samples`` genotypes (about a GAS
   search's wall time). Random search has no latency weight, so its latency target is the mean predicted
   latency of the ``gcn_sim`` networks at ``--random-target-weight`` (default 0): uniformly sampled
   genotypes are far slower than a latency-weighted search's, and rejection sampling cannot reach
   those. Every derived network is trained from scratch with the same budget and evaluated on CamVid test.
2. Heads: the best ``gcn_sim`` genotype (by its training run's val mIoU) trained with ASPP and with PPM,
   ``--seeds`` seeds each; test mIoU and measured latency/FPS.
3. Latency-weight sweep (``gcn_sim``, weights ``--sweep``) beside the hand-designed reference genotypes of
   the same space (``hand_sep``, ``hand_light``), trained with the same budget; Pareto front.

Every job is a subprocess (``python -m gasgnn search|train|eval``) with ``--threads`` torch threads,
``--jobs`` at a time; finished jobs are skipped and unfinished ones resume, so an interrupted run
continues where it stopped. Outputs: ``OUT/results.json``, ``OUT/report.md`` and figures in ``--fig-dir``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gasgnn import GASNet, Genotype
from gasgnn.genotype import reference_genotype
from gasgnn.latency import LatencyTable
from gasgnn.train import benchmark
from gasgnn.utils import atomic_write_text, read_json, write_json
from gasgnn.viz import analyze, pareto_front

REFERENCES = ("hand_sep", "hand_light", "skip_only")
RANDOM_LONG = "random (equal time)"


@dataclass
class Job:
    """One subprocess: ``cmd`` runs unless ``done`` exists; ``capture`` keeps its last stdout line (JSON)."""

    name: str
    cmd: list[str]
    done: Path
    capture: Path | None = None
    resume_flag: Path | None = None  # add --resume when this file exists
    after: list[list[str]] = field(default_factory=list)  # follow-up commands (captured likewise)
    keys: list[str] | None = None  # capture each command's JSON under these keys (None: the one result as is)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--root", default=None, help="CamVid root (default: the package's search order)")
    a("--out", type=Path, default=Path("runs/repro"))
    a("--fig-dir", type=Path, default=Path("docs/figures"), help="where the report's figures go")
    a("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a("--weight", type=float, default=1.0, help="latency weight of the guidance comparison")
    a("--guides", nargs="+", default=["gcn_sim", "fc", "none"])
    a("--sweep", type=float, nargs="+", default=[0.0, 0.3, 1.0, 3.0], help="latency weights of the sweep")
    a("--jobs", type=int, default=2, help="subprocesses at a time")
    a("--threads", type=int, default=1, help="torch threads per subprocess and for the timing")
    g = p.add_argument_group("search budget")
    g.add_argument("--num-cells", type=int, default=8)
    g.add_argument("--channels", type=int, default=8)
    g.add_argument("--size", type=int, nargs=2, default=[180, 240], help="deployment size (table, timing)")
    g.add_argument("--crop", type=int, nargs=2, default=[90, 120], help="training crop of the searches")
    g.add_argument("--epochs", type=int, default=6)
    g.add_argument("--warmup-epochs", type=int, default=2)
    g.add_argument("--steps-per-epoch", type=int, default=20)
    g.add_argument("--batch-size", type=int, default=4)
    g.add_argument("--a-lr", type=float, default=3e-3)
    g.add_argument("--random-samples", type=int, default=6,
                   help="random search: genotypes; x --random-steps = the GAS search's weight steps")
    g.add_argument("--random-steps", type=int, default=20)
    g.add_argument("--random-long-samples", type=int, default=30,
                   help="a second random search with this many genotypes (about a GAS search's wall time); 0: off")
    g.add_argument("--random-target-weight", type=float, default=0.0,
                   help="random search's latency target: the mean predicted latency of the gcn_sim networks "
                        "searched at this latency weight (one of --sweep or --weight)")
    t = p.add_argument_group("training budget (every network alike)")
    t.add_argument("--train-epochs", type=int, default=6)
    t.add_argument("--train-crop", type=int, nargs=2, default=[180, 240])
    t.add_argument("--scale-range", type=float, nargs=2, default=[0.4, 0.75])
    t.add_argument("--lr", type=float, default=0.05)
    t.add_argument("--train-max-iters", type=int, default=None, help="cap on iterations (smoke runs)")
    a("--stage", choices=["all", "run", "report", "figures", "long"], default="all",
      help="'report' re-reads finished runs and times the networks; 'figures' redraws from OUT/results.json; "
           "'long' retrains the guidance comparison for --long-epochs")
    a("--long-epochs", type=int, default=20, help="training epochs of the 'long' stage")
    return p.parse_args()


def run_jobs(jobs: list[Job], n: int, out: Path, threads: int, title: str) -> None:
    """Runs unfinished jobs ``n`` at a time; a failure stops the script after the others finish."""
    todo = [j for j in jobs if not j.done.is_file()]
    print(f"[{title}] {len(jobs) - len(todo)} of {len(jobs)} done, running {len(todo)}", flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    (out / "logs").mkdir(parents=True, exist_ok=True)

    def one(job: Job) -> str | None:
        t0 = time.perf_counter()
        cmds = [job.cmd + (["--resume"] if job.resume_flag and job.resume_flag.is_file() else []), *job.after]
        with open(out / "logs" / f"{job.name}.log", "a") as log:
            for k, cmd in enumerate(cmds):
                log.write(f"$ {' '.join(cmd)}\n")
                log.flush()
                r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
                log.write(r.stdout)
                if r.returncode != 0:
                    return f"{job.name}: exit {r.returncode} (see {out / 'logs' / (job.name + '.log')})"
                if job.capture is not None:
                    res = json.loads(r.stdout[r.stdout.index("{\n") if not r.stdout.startswith("{") else 0:])
                    if job.keys is None:
                        write_json(job.capture, res)
                    else:
                        prev = read_json(job.capture) if k and job.capture.is_file() else {}
                        write_json(job.capture, {**prev, job.keys[k]: res})
        print(f"  {job.name}: {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
        return None

    with ThreadPoolExecutor(max_workers=n) as pool:
        errors = [e for e in pool.map(one, todo) if e]
    if errors:
        sys.exit("failed jobs:\n  " + "\n  ".join(errors))


def gasgnn_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "gasgnn", *args]


def search_job(args: argparse.Namespace, run: Path, table: Path, extra: list[str], seed: int) -> Job:
    cmd = gasgnn_cmd(
        "search", "--data", "camvid", *(["--root", args.root] if args.root else []), "--workers", "0",
        "--num-cells", str(args.num_cells), "--channels", str(args.channels), "--input-size", *map(str, args.size),
        "--crop", *map(str, args.crop), "--latency-table", str(table), "--batch-size", str(args.batch_size),
        "--seed", str(seed), "--out", str(run), "--no-figures", "--json", *extra)
    return Job(run.name, cmd, run / "summary.json", capture=run / "result.json", resume_flag=run / "checkpoint.pt")


def gas_extra(args: argparse.Namespace, guide: str, weight: float) -> list[str]:
    return ["--guide", guide, "--latency-weight", str(weight), "--epochs", str(args.epochs),
            "--warmup-epochs", str(args.warmup_epochs), "--steps-per-epoch", str(args.steps_per_epoch),
            "--a-lr", str(args.a_lr)]


def train_job(args: argparse.Namespace, name: str, genotype: Path, head: str, seed: int, epochs: int | None = None,
              subdir: str = "train") -> Job:
    d = args.out / subdir / name
    epochs = args.train_epochs if epochs is None else epochs
    data = ["--data", "camvid", *(["--root", args.root] if args.root else []), "--workers", "0"]
    cmd = gasgnn_cmd(
        "train", "--genotype", str(genotype), *data, "--out", str(d), "--epochs", str(epochs),
        "--batch-size", "4", "--lr", str(args.lr), "--warmup-iters", "20", "--crop", *map(str, args.train_crop),
        "--scale-range", *map(str, args.scale_range), "--val-size", *map(str, args.size), "--head", head,
        "--seed", str(seed), "--no-progress", "--json",
        *(["--max-iters", str(args.train_max_iters)] if args.train_max_iters else []))
    ev = gasgnn_cmd("eval", "--checkpoint", str(d / "last.pt"), *data, "--split", "test",
                    "--size", *map(str, args.size), "--no-progress", "--json")
    return Job(name, cmd, d / "result.json", capture=d / "result.json", resume_flag=d / "last.pt", after=[ev],
               keys=["train", "eval"])


def mean_std(xs: list[float]) -> tuple[float, float]:
    return (statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0)


def fmt(xs: list[float], scale: float = 1.0, nd: int = 1) -> str:
    m, s = mean_std([scale * x for x in xs])
    return f"{m:.{nd}f} ± {s:.{nd}f}"


def run_all(args: argparse.Namespace) -> None:
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    table = out / "latency_table.json"
    if not table.is_file():  # one table at the deployment size, shared by every run
        subprocess.run(gasgnn_cmd("latency", "measure", "--num-cells", str(args.num_cells), "--channels",
                                  str(args.channels), "--input-size", *map(str, args.size), "--sizes",
                                  *map(str, args.size), "--heads", "aspp", "ppm", "--out", str(table)), check=True,
                       env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})  # timed as the bench times
    # 1 + 3: every GAS search (the sweep's weight == --weight runs are shared with the comparison).
    jobs, weights = [], sorted(set(args.sweep) | {args.weight})
    for s in args.seeds:
        for g in args.guides:
            jobs.append(search_job(args, out / "search" / f"{g}_w{args.weight:g}_s{s}", table,
                                   gas_extra(args, g, args.weight), s))
        for w in weights:
            if w != args.weight:
                jobs.append(search_job(args, out / "search" / f"gcn_sim_w{w:g}_s{s}", table,
                                       gas_extra(args, "gcn_sim", w), s))
    run_jobs(jobs, args.jobs, out, args.threads, "GAS searches")
    # Random search under the mean predicted latency of the gcn_sim networks at --random-target-weight.
    # (Uniformly sampled genotypes of this space are 14-20 ms; a target at the lambda=1 networks' ~7 ms
    # admits none of 10000 samples, so random search is matched in latency to a lighter weight.)
    tw = args.random_target_weight
    preds = [read_json(out / "search" / f"gcn_sim_w{tw:g}_s{s}" / "result.json")["predicted_latency_ms"]
             for s in args.seeds]
    target = statistics.fmean(preds)
    rnd = ["--random", "--samples", str(args.random_samples), "--steps-per-sample", str(args.random_steps),
           "--target-ms", f"{target:.4f}"]
    rjobs = [search_job(args, out / "search" / f"random_s{s}", table, rnd, s) for s in args.seeds]
    if args.random_long_samples:  # random search given about the wall time of a GAS search
        rnd_long = [*rnd[:2], str(args.random_long_samples), *rnd[3:]]
        rjobs += [search_job(args, out / "search" / f"random_long_s{s}", table, rnd_long, s) for s in args.seeds]
    run_jobs(rjobs, args.jobs, out, args.threads, "random searches")
    # Train every derived network and the references with the same budget.
    gdir = out / "genotypes"
    gdir.mkdir(exist_ok=True)
    space = Genotype.load(out / "search" / f"gcn_sim_w{args.weight:g}_s{args.seeds[0]}" / "genotype.json").space
    for ref in REFERENCES:
        if not (gdir / f"{ref}.json").is_file():
            reference_genotype(ref, space).save(gdir / f"{ref}.json")
    tjobs = [train_job(args, f"{r.name}_aspp", r / "genotype.json", "aspp", int(r.name.rsplit("_s", 1)[1]))
             for r in sorted((out / "search").iterdir()) if (r / "genotype.json").is_file()]
    tjobs += [train_job(args, f"{ref}_aspp_s{s}", gdir / f"{ref}.json", "aspp", s)
              for ref in REFERENCES for s in args.seeds]
    run_jobs(tjobs, args.jobs, out, args.threads, "training")
    # 2: the best gcn_sim genotype with both heads, every seed.
    best = best_genotype(args)
    hjobs = [train_job(args, f"best_{head}_s{s}", best, head, s) for head in ("aspp", "ppm") for s in args.seeds]
    run_jobs(hjobs, args.jobs, out, args.threads, "heads")


LONG_GROUPS = {"gcn_sim": "search/gcn_sim_w{w:g}_s{s}", "fc": "search/fc_w{w:g}_s{s}",
               "random (equal time)": "search/random_long_s{s}", "skip_only": "genotypes/skip_only"}


def run_long(args: argparse.Namespace) -> str:
    """Retrains the gcn_sim and fc (at --weight) and the equal-time random-search genotypes of every seed, and
    the skip_only ablation, for --long-epochs epochs (OUT/train_long/), to see whether a larger budget
    separates them; returns a table."""
    jobs, names = [], {}
    for group, pattern in LONG_GROUPS.items():
        for s in args.seeds:
            src = args.out / pattern.format(w=args.weight, s=s)
            if pattern.startswith("search/"):
                name, genotype, short = src.name, src / "genotype.json", f"{src.name}_aspp"
            else:  # a reference genotype, trained with seed s
                name, genotype, short = f"{src.name}_s{s}", src.with_suffix(".json"), f"{src.name}_aspp_s{s}"
            jobs.append(train_job(args, name, genotype, "aspp", s, args.long_epochs, "train_long"))
            names.setdefault(group, []).append((name, short))
    run_jobs(jobs, args.jobs, args.out, args.threads, f"training, {args.long_epochs} epochs")
    lines = [f"| network | test mIoU, {args.train_epochs} epochs | test mIoU, {args.long_epochs} epochs | "
             f"val mIoU, {args.long_epochs} epochs |", "|---|---|---|---|"]
    rows = {}
    for group, runs in names.items():
        short = [read_json(args.out / "train" / sh / "result.json")["eval"]["miou"] for _, sh in runs]
        res = [read_json(args.out / "train_long" / n / "result.json") for n, _ in runs]
        long = [x["eval"]["miou"] for x in res]
        val = [x["train"]["best_miou"] for x in res]
        rows[group] = {"short": short, "long": long, "val": val}
        lines.append(f"| {group} | {fmt(short, 100)} | {fmt(long, 100)} | {fmt(val, 100)} |")
    write_json(args.out / "results_long.json", {"epochs": args.long_epochs, "groups": rows})
    text = "\n".join(lines) + "\n"
    atomic_write_text(args.out / "report_long.md", text)
    return text


def best_genotype(args: argparse.Namespace) -> Path:
    """The gcn_sim comparison genotype whose training reached the highest val mIoU (never the test split)."""
    runs = [args.out / "search" / f"gcn_sim_w{args.weight:g}_s{s}" for s in args.seeds]
    vals = [read_json(args.out / "train" / f"{r.name}_aspp" / "result.json")["train"]["best_miou"] for r in runs]
    return runs[max(range(len(runs)), key=vals.__getitem__)] / "genotype.json"


def collect(args: argparse.Namespace) -> dict:
    """Reads every finished run, times all networks side by side and returns one record per training run."""
    out = args.out
    table = LatencyTable.load(out / "latency_table.json")
    records = []
    for d in sorted((out / "train").iterdir()):
        res_path = d / "result.json"
        if not res_path.is_file():
            continue
        res = read_json(res_path)
        cfg = read_json(d / "config.json")
        name, head = d.name, cfg["config"]["head"]
        if name.startswith("best_"):
            group, seed, gpath = f"best genotype, {head}", int(name.rsplit("_s", 1)[1]), best_genotype(args)
        elif (ref := name.split("_aspp")[0]) in REFERENCES:
            group, seed, gpath = ref, int(name.rsplit("_s", 1)[1]), out / "genotypes" / f"{ref}.json"
        else:
            run = out / "search" / name[: -len("_aspp")]
            summ = read_json(run / "result.json")
            conf = read_json(run / "config.json")
            group = (RANDOM_LONG if run.name.startswith("random_long") else "random") if conf.get("guide") == "random" \
                else f"{conf['guide']} λ={conf['latency_weight']:g}"
            seed, gpath = int(run.name.rsplit("_s", 1)[1]), run / "genotype.json"
            res["search_minutes"] = summ["wall_seconds"] / 60
        g = Genotype.load(gpath)
        st = analyze(g)
        records.append({
            "name": name, "group": group, "seed": seed, "head": head, "genotype": str(gpath),
            "val_miou": res["train"]["best_miou"], "val_miou_final": res["train"]["last"]["val_miou"],
            "test_miou": res["eval"]["miou"], "train_minutes": res["train"]["seconds"] / 60,
            "search_minutes": res.get("search_minutes"),
            "predicted_ms": float(table.predict(g, head=head, input_size=tuple(args.size))),
            "light_ops": st["light_ops"], "large_rf_last4": st["large_rf_last4"],
            "diversity_all": st["diversity_all"], "diversity_neighbour": st["diversity_neighbour"],
        })
    # Time every distinct (genotype, head) side by side: interleaved rounds, batch 1, --threads threads.
    torch.set_num_threads(args.threads)
    nets, keys = {}, {}
    for r in records:
        key = f"{r['genotype']}|{r['head']}"
        if key not in nets:
            g = Genotype.load(r["genotype"])
            nets[key] = GASNet(g, g.space.replace(input_size=tuple(args.size)), head=r["head"]).eval()
        keys[r["name"]] = key
        r["params"] = sum(p.numel() for p in nets[key].parameters())
    t0 = time.perf_counter()
    bench = benchmark(nets, sizes=[tuple(args.size)], warmup=3, iters=40, rounds=4, progress=True)
    ms = {b["model"]: b["latency_ms"]["median"] for b in bench["results"]}
    for r in records:
        r["measured_ms"] = ms[keys[r["name"]]]
    meta = {"table_device": table.meta.get("device_name"), "threads": args.threads,
            "bench_seconds": time.perf_counter() - t0, "date": time.strftime("%Y-%m-%d"),
            "torch": torch.__version__, "args": {k: str(v) for k, v in vars(args).items()}}
    return {"meta": meta, "records": records}


def group_rows(records: list[dict], groups: list[str]) -> list[dict]:
    rows = []
    for g in groups:
        rs = [r for r in records if r["group"] == g]
        if not rs:
            continue
        row = {"group": g, "n": len(rs)}
        for k in ("test_miou", "val_miou", "measured_ms", "predicted_ms", "light_ops", "large_rf_last4",
                  "diversity_all", "diversity_neighbour", "params", "train_minutes", "search_minutes"):
            vals = [r[k] for r in rs if r.get(k) is not None]
            row[k] = mean_std(vals) if vals else None
        rows.append(row)
    return rows


def report(args: argparse.Namespace, data: dict) -> str:
    recs, w = data["records"], args.weight
    cmp_groups = [f"{g} λ={w:g}" for g in args.guides] + ["random", RANDOM_LONG]
    sweep_groups = [f"gcn_sim λ={x:g}" for x in sorted(set(args.sweep) | {w})]
    head_groups = ["best genotype, aspp", "best genotype, ppm"]

    def cell(row: dict, k: str, scale: float = 1.0, nd: int = 1) -> str:
        if row.get(k) is None:
            return "-"
        m, s = row[k]
        return f"{scale * m:.{nd}f} ± {scale * s:.{nd}f}"

    lines = [f"Seeds: {args.seeds}; latency at {args.size[0]}x{args.size[1]}, batch 1, {args.threads} thread(s), "
             f"all networks timed side by side in one run ({data['meta']['date']}). mIoU in %, mean ± std.", ""]
    lines += [f"### Guidance (latency weight {w:g})", "",
              "| search | test mIoU | val mIoU | measured ms | predicted ms | light-weight ops | "
              "large-RF ops, last 4 cells | diversity (all / neighbours) | search min |", "|---" * 9 + "|"]
    for r in group_rows(recs, cmp_groups):
        lines.append(f"| {r['group']} | {cell(r, 'test_miou', 100)} | {cell(r, 'val_miou', 100)} | "
                     f"{cell(r, 'measured_ms', nd=2)} | {cell(r, 'predicted_ms', nd=2)} | {cell(r, 'light_ops')} | "
                     f"{cell(r, 'large_rf_last4')} | {cell(r, 'diversity_all', nd=2)} / "
                     f"{cell(r, 'diversity_neighbour', nd=2)} | {cell(r, 'search_minutes')} |")
    lines += ["", "### Heads on the best genotype", "",
              "| head | test mIoU | val mIoU | measured ms | FPS | params (M) |", "|---" * 6 + "|"]
    for r in group_rows(recs, head_groups):
        fps = 1000.0 / r["measured_ms"][0]
        lines.append(f"| {r['group'].split(', ')[1]} | {cell(r, 'test_miou', 100)} | {cell(r, 'val_miou', 100)} | "
                     f"{cell(r, 'measured_ms', nd=2)} | {fps:.1f} | {r['params'][0] / 1e6:.3f} |")
    lines += ["", "### Latency-weight sweep, hand-designed references and random search", "",
              "| network | test mIoU | measured ms | predicted ms | light-weight ops | on the Pareto front |",
              "|---" * 6 + "|"]
    rows = group_rows(recs, sweep_groups + list(REFERENCES) + ["random", RANDOM_LONG])
    front = set(pareto_front([(r["measured_ms"][0], r["test_miou"][0]) for r in rows]))
    for i, r in enumerate(rows):
        lines.append(f"| {r['group']} | {cell(r, 'test_miou', 100)} | {cell(r, 'measured_ms', nd=2)} | "
                     f"{cell(r, 'predicted_ms', nd=2)} | {cell(r, 'light_ops')} | {'yes' if i in front else ''} |")
    return "\n".join(lines) + "\n"


def figures(args: argparse.Namespace, data: dict) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs, w = data["records"], args.weight
    args.fig_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    sweep = [f"gcn_sim λ={x:g}" for x in sorted(set(args.sweep) | {w})]
    groups = sweep + list(REFERENCES) + [f"{g} λ={w:g}" for g in args.guides if g != "gcn_sim"] + ["random",
                                                                                                 RANDOM_LONG]
    rows = group_rows(recs, groups)
    palette = [plt.get_cmap("tab10")(i) for i in range(10)] + ["black", "#b8860b", "#00ced1"]

    def cmap(i: int) -> object:
        return palette[i % len(palette)]

    for i, r in enumerate(rows):
        pts = [x for x in recs if x["group"] == r["group"]]
        ax.scatter([p["measured_ms"] for p in pts], [100 * p["test_miou"] for p in pts], s=12, alpha=0.35,
                   color=cmap(i))
        ax.errorbar(r["measured_ms"][0], 100 * r["test_miou"][0], xerr=r["measured_ms"][1],
                    yerr=100 * r["test_miou"][1], fmt="o" if r["group"] in sweep else "s", color=cmap(i),
                    mec="black", mew=0.5, capsize=3, label=r["group"])
    srows = [r for r in rows if r["group"] in sweep]
    front = sorted(pareto_front([(r["measured_ms"][0], r["test_miou"][0]) for r in rows]))
    fr = sorted((rows[i]["measured_ms"][0], 100 * rows[i]["test_miou"][0]) for i in front)
    ax.step([p[0] for p in fr], [p[1] for p in fr], where="post", color="black", alpha=0.6, ls="--", lw=1.6,
            zorder=1, label="Pareto front (means)")
    ax.plot([r["measured_ms"][0] for r in srows], [100 * r["test_miou"][0] for r in srows], color=cmap(0), lw=0.8,
            alpha=0.6)
    ax.set_xlabel(f"measured latency (ms, {args.size[0]}x{args.size[1]}, batch 1, CPU)")
    ax.set_ylabel("CamVid test mIoU (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False, ncol=2)
    ax.set_title(f"latency vs mIoU, mean ± std over {len(args.seeds)} seeds (faint: single seeds)", fontsize=9)
    p = args.fig_dir / "repro_pareto.png"
    fig.tight_layout()
    fig.savefig(p)
    plt.close(fig)
    paths.append(p)
    # Guidance comparison: mIoU, latency and the supplement's statistics side by side.
    cmp = group_rows(recs, [f"{g} λ={w:g}" for g in args.guides] + ["random", RANDOM_LONG])
    keys = [("test_miou", "test mIoU (%)", 100), ("measured_ms", "measured latency (ms)", 1),
            ("light_ops", "light-weight ops", 1), ("large_rf_last4", "large-RF ops, last 4 cells", 1),
            ("diversity_all", "cell diversity", 1)]
    fig, axes = plt.subplots(1, len(keys), figsize=(14, 3.2), dpi=110)
    for ax, (k, label, sc) in zip(axes, keys):
        xs = range(len(cmp))
        ax.bar(xs, [sc * r[k][0] for r in cmp], yerr=[sc * r[k][1] for r in cmp], capsize=3,
               color=[cmap(i) for i in xs], edgecolor="black", linewidth=0.5)
        for i, r in enumerate(cmp):
            pts = [sc * x[k] for x in recs if x["group"] == r["group"]]
            ax.scatter([i] * len(pts), pts, s=8, color="black", zorder=3)
        short = {"random": f"random\n{args.random_samples}x{args.random_steps}",
                 RANDOM_LONG: f"random\n{args.random_long_samples}x{args.random_steps}"}
        ax.set_xticks(list(xs), [short.get(r["group"], r["group"].replace(f" λ={w:g}", "")) for r in cmp],
                      fontsize=7)
        ax.set_title(label, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"guidance at latency weight {w:g} (bars: mean ± std, dots: seeds)", fontsize=10)
    fig.tight_layout()
    p = args.fig_dir / "repro_guidance.png"
    fig.savefig(p)
    plt.close(fig)
    paths.append(p)
    return paths


def main() -> None:
    args = parse_args()
    t0 = time.perf_counter()
    if args.stage in ("all", "run"):
        run_all(args)
    if args.stage == "figures":
        for p in figures(args, read_json(args.out / "results.json")):
            print(f"figure: {p}")
    if args.stage == "long":
        print(run_long(args))
    if args.stage in ("all", "report"):
        data = collect(args)
        data["meta"]["run_wall_minutes"] = (time.perf_counter() - t0) / 60 if args.stage == "all" else None
        write_json(args.out / "results.json", data)
        text = report(args, data)
        atomic_write_text(args.out / "report.md", text)
        for p in figures(args, data):
            print(f"figure: {p}")
        print(text)


if __name__ == "__main__":
    main()
