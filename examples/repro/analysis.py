"""Reads the finished runs of the reproduction, times the networks and compares the variants with paired
statistics (:mod:`gasgnn.stats`); writes the report's tables and figures."""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

import torch

from gasgnn import GASNet, Genotype
from gasgnn.ggm import DIAGNOSTICS
from gasgnn.latency import LatencyTable
from gasgnn.runner import RunDir
from gasgnn.stats import paired_comparison, summarize
from gasgnn.train import benchmark
from gasgnn.utils import read_json
from gasgnn.viz import analyze, pareto_front
from repro.jobs import Budget

STATS = ("light_ops", "large_rf_last4", "diversity_all", "diversity_neighbour")


def collect(args, budget_name: str, genotypes: dict[str, Path], time_networks: bool = True) -> list[dict]:
    """One record per finished training under ``train/<budget>``; ``genotypes`` maps a training's directory
    name to its genotype file. Networks are timed side by side (interleaved rounds, batch 1)."""
    budget = Budget.parse(budget_name)
    table = LatencyTable.load(args.out / "latency_table.json")
    recs = []
    dirs = {d.name: d for where in ("calib", "train") for d in sorted((args.out / where / budget_name).glob("*_s*"))}
    for d in dirs.values():  # train/ after calib/: the comparison's own runs win
        if not (d / "result.json").is_file() or d.name not in genotypes:
            continue
        res, gpath = read_json(d / "result.json"), genotypes[d.name]
        g = Genotype.load(gpath)
        network, seed = d.name.rsplit("_s", 1)
        rec = {"name": d.name, "network": network, "seed": int(seed), "genotype": str(gpath),
               "test_miou": 100 * res["eval"]["miou"], "val_miou": 100 * res["train"]["best_miou"],
               "train_minutes": res["train"]["seconds"] / 60,
               "predicted_ms": float(table.predict(g, head=budget.head, head_channels=budget.head_channels,
                                                   input_size=tuple(args.size)))}
        rec.update({k: float(v) for k, v in analyze(g).items() if k in STATS})
        search = gpath.parent / "result.json"
        if search.is_file():
            rec["search_minutes"] = read_json(search)["search"]["wall_seconds"] / 60
            rec.update(search_diagnostics(gpath.parent))
        recs.append(rec)
    if time_networks and recs:
        torch.set_num_threads(args.threads)
        nets = {}
        for r in recs:
            if r["genotype"] not in nets:
                g = Genotype.load(r["genotype"])
                nets[r["genotype"]] = GASNet(g, g.space.replace(input_size=tuple(args.size)), head=budget.head,
                                             head_channels=budget.head_channels).eval()
        t0 = time.perf_counter()
        bench = benchmark(nets, sizes=[tuple(args.size)], warmup=3, iters=args.bench_iters, rounds=4, progress=True)
        ms = {b["model"]: b["latency_ms"]["median"] for b in bench["results"]}
        for r in recs:
            r["measured_ms"] = ms[r["genotype"]]
            r["params"] = sum(p.numel() for p in nets[r["genotype"]].parameters())
        print(f"timed {len(nets)} networks in {time.perf_counter() - t0:.0f} s", flush=True)
    return recs


def search_diagnostics(run_dir: Path) -> dict[str, float]:
    """The guide's diagnostics (:data:`gasgnn.ggm.DIAGNOSTICS`, logged per epoch) at the last epoch of the
    search in ``run_dir``: those it logged and defined (a search without a guide logs nan, random search
    nothing)."""
    run = RunDir(run_dir)
    if not run.has(RunDir.METRICS):
        return {}
    cols = run.read_metrics()
    last = {k: (cols.get(k) or [None])[-1] for k in DIAGNOSTICS}
    return {k: float(v) for k, v in last.items() if v is not None and math.isfinite(v)}  # nan: not defined


def by_network(recs: list[dict], network: str) -> dict[int, dict]:
    return {r["seed"]: r for r in recs if r["network"] == network}


def compare(recs: list[dict], variants: list[str], baseline: str = "none", key: str = "test_miou") -> list[dict]:
    """Mean ± std (95 % CI) of each variant, and its paired difference to ``baseline`` over common seeds."""
    base = by_network(recs, baseline)
    rows = []
    for v in variants:
        mine = by_network(recs, v)
        if not mine:
            continue
        row = {"network": v, "seeds": sorted(mine), key: summarize([r[key] for r in mine.values()]).to_dict()}
        for k in ("val_miou", "predicted_ms", "measured_ms", *STATS, "search_minutes", "train_minutes",
                  *DIAGNOSTICS):
            xs = [r[k] for r in mine.values() if r.get(k) is not None]
            row[k] = summarize(xs).to_dict() if xs else None
        common = sorted(set(mine) & set(base))
        if v != baseline and len(common) >= 2:
            c = paired_comparison([mine[s][key] for s in common], [base[s][key] for s in common])
            row["vs_" + baseline] = {"seeds": common, **c.to_dict()}
        rows.append(row)
    return rows


def _ms(x: dict | None, nd: int = 1) -> str:
    return "-" if x is None else f"{x['mean']:.{nd}f} ± {x['std']:.{nd}f}"


def guide_table(rows: list[dict], baseline: str = "none") -> str:
    k = "vs_" + baseline
    lines = [f"| search | n | test mIoU | Δ vs {baseline} [95 % CI] | paired t p | Wilcoxon p | wins | val mIoU | "
             "predicted ms | measured ms | light-weight ops | large-RF ops, last 4 | diversity | search min |",
             "|---" * 14 + "|"]
    for r in rows:
        c = r.get(k)
        diff = "-" if c is None else f"{c['mean_diff']:+.2f} [{c['ci_low']:+.2f}, {c['ci_high']:+.2f}]"
        lines.append(
            f"| {r['network']} | {len(r['seeds'])} | {_ms(r['test_miou'], 2)} | {diff} | "
            f"{'-' if c is None else format(c['p_t'], '.3f')} | "
            f"{'-' if c is None else format(c['p_wilcoxon'], '.3f')} | "
            f"{'-' if c is None else str(c['wins']) + '/' + str(c['n'])} | {_ms(r['val_miou'])} | "
            f"{_ms(r['predicted_ms'], 2)} | {_ms(r['measured_ms'], 2)} | {_ms(r['light_ops'])} | "
            f"{_ms(r['large_rf_last4'])} | {_ms(r['diversity_all'], 2)} | {_ms(r['search_minutes'])} |")
    return "\n".join(lines) + "\n"


def diagnostics_table(rows: list[dict]) -> str:
    """The guides at the end of their searches: distinct arg-max sources per cell, update ratio
    ||alpha' - alpha|| / ||alpha|| and attention entropy; rows without diagnostics are left out, and
    without any the table is empty (``""``)."""
    rows = [r for r in rows if any(r.get(k) for k in DIAGNOSTICS)]
    if not rows:
        return ""
    lines = ["| search | n | distinct arg-max sources per cell | update ratio | attention entropy |", "|---" * 5 + "|"]
    for r in rows:
        n = max(r[k]["n"] for k in DIAGNOSTICS if r.get(k))
        lines.append(f"| {r['network']} | {n} | {_ms(r.get('guide_distinct_sources'))} | "
                     f"{_ms(r.get('guide_update_ratio'), 3)} | {_ms(r.get('guide_attention_entropy'), 3)} |")
    return "\n".join(lines) + "\n"


def calibration_table(cal: dict) -> str:
    lines = ["| budget | head | epochs | skip_only | hand_light | searched (gcn_sim) | gap hand_light / searched "
             "(2 std) | separates | train min |", "|---" * 9 + "|"]
    for b in cal["budgets"]:
        res = b["test_miou"]

        def cell(n: str, res: dict = res) -> str:
            xs = res.get(n, [])
            if not xs:
                return "-"
            return f"{statistics.fmean(xs):.1f} ± {statistics.stdev(xs) if len(xs) > 1 else 0:.1f} (n={len(xs)})"

        gaps = b.get("gaps")
        gap = "-" if not gaps else " / ".join(f"{g['gap']:+.1f} ({g['two_std']:.1f})" for g in gaps.values())
        sep = "-" if "separates" not in b else ("**yes**" if b["separates"] else "no")
        tm = "-" if b["train_minutes"] is None else f"{b['train_minutes']:.1f}"
        lines.append(f"| {b['budget']} | {b['head']} {b['head_channels']} | {b['epochs']} | {cell('skip_only')} | "
                     f"{cell('hand_light')} | {cell('gcn_sim')} | {gap} | {sep} | {tm} |")
    return "\n".join(lines) + "\n"


def pareto_table(rows: list[dict]) -> str:
    """Latency against accuracy: every network's means, its paired difference to ``skip_only`` and whether
    it is on the front (no other network both faster and more accurate, by measured latency)."""
    rows = [r for r in rows if r.get("measured_ms")]
    front = pareto_rows(rows)  # indices into rows as filtered here
    lines = ["| network | n | test mIoU | measured ms | predicted ms | light-weight ops | Δ vs skip_only | front |",
             "|---" * 8 + "|"]
    for i, r in enumerate(rows):
        c = r.get("vs_skip_only")
        lines.append(f"| {r['network']} | {len(r['seeds'])} | {_ms(r['test_miou'], 2)} | {_ms(r['measured_ms'], 2)} | "
                     f"{_ms(r['predicted_ms'], 2)} | {_ms(r['light_ops'])} | "
                     f"{'-' if c is None else format(c['mean_diff'], '+.2f')} | {'yes' if i in front else ''} |")
    return "\n".join(lines) + "\n"


def pareto_rows(rows: list[dict]) -> set[int]:
    pts = [(r["measured_ms"]["mean"], r["test_miou"]["mean"]) for r in rows if r.get("measured_ms")]
    return set(pareto_front(pts))


def figures(args, results: dict) -> list[Path]:
    """Guide comparison (values and paired differences), calibration and latency/mIoU figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.fig_dir.mkdir(parents=True, exist_ok=True)
    paths, recs = [], results["records"]
    rows = [r for r in results["guides"] if r["network"] not in ("skip_only", "hand_light")]
    if rows:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.6), dpi=110)
        for i, r in enumerate(rows):
            pts = [x["test_miou"] for x in recs if x["network"] == r["network"]]
            a1.scatter([i] * len(pts), pts, s=10, color="black", zorder=3)
            a1.bar(i, r["test_miou"]["mean"], yerr=r["test_miou"]["std"], capsize=3, color=f"C{i}", alpha=0.8)
            c = r.get("vs_none")
            if c:
                a2.errorbar(i, c["mean_diff"], yerr=[[c["mean_diff"] - c["ci_low"]], [c["ci_high"] - c["mean_diff"]]],
                            fmt="o", color=f"C{i}", capsize=3)
        for ax in (a1, a2):
            ax.set_xticks(range(len(rows)), [r["network"] for r in rows], fontsize=7, rotation=20)
            ax.grid(axis="y", alpha=0.3)
        lo = min(r["test_miou"]["mean"] - 2 * r["test_miou"]["std"] for r in rows)
        a1.set_ylim(bottom=max(0.0, lo - 2))
        a1.set_title("test mIoU (bars: mean ± std; dots: seeds)", fontsize=9)
        a2.axhline(0, color="black", lw=0.8)
        a2.set_title("paired difference to 'none' (mean, 95 % CI)", fontsize=9)
        fig.tight_layout()
        paths.append(args.fig_dir / "repro_guides.png")
        fig.savefig(paths[-1])
        plt.close(fig)
    cal = results.get("calibration")
    if cal and cal["budgets"]:
        fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
        names = [b["budget"] for b in cal["budgets"]]
        for j, n in enumerate(("skip_only", "hand_light", "gcn_sim")):
            for i, b in enumerate(cal["budgets"]):
                xs = b["test_miou"].get(n, [])
                ax.scatter([i + (j - 1) * 0.12] * len(xs), xs, s=14, color=f"C{j}", label=n if i == 0 else None)
        ax.set_xticks(range(len(names)), names, fontsize=8)
        ax.set_ylabel("CamVid test mIoU (%)")
        ax.set_title("budget calibration: does the budget rank cell work?", fontsize=9)
        ax.legend(fontsize=8, frameon=False)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        paths.append(args.fig_dir / "repro_calibration.png")
        fig.savefig(paths[-1])
        plt.close(fig)
    pareto = [r for r in results.get("pareto", []) if r.get("measured_ms")]
    if pareto:
        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
        for i, r in enumerate(pareto):
            ax.errorbar(r["measured_ms"]["mean"], r["test_miou"]["mean"], xerr=r["measured_ms"]["std"],
                        yerr=r["test_miou"]["std"], fmt="osD^v"[i // 10 % 5], color=f"C{i % 10}", capsize=3,
                        label=r["network"])  # more networks than colours: the marker tells them apart
        front = sorted((pareto[i]["measured_ms"]["mean"], pareto[i]["test_miou"]["mean"]) for i in pareto_rows(pareto))
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="black", ls="--", lw=1, alpha=0.6)
        ax.set_xlabel(f"measured latency (ms, {args.size[0]}x{args.size[1]}, batch 1, {args.threads} thread(s))")
        ax.set_ylabel("CamVid test mIoU (%)")
        ax.legend(fontsize=7, frameon=False, ncol=2)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        paths.append(args.fig_dir / "repro_pareto.png")
        fig.savefig(paths[-1])
        plt.close(fig)
    t1 = results.get("table1")
    if t1 and t1.get("records"):
        paths.append(table1_figure(t1, args.fig_dir / "repro_table1.png"))
    return paths


def table1_figure(t1: dict, path: Path) -> Path:
    """Table 1 at a glance: each seed's test mIoU with both heads (a line per seed, so the pairing shows) and
    the FPS of both heads per backend (mean and spread over the networks)."""
    import matplotlib.pyplot as plt

    backends = t1.get("backends", [])
    fig, axes = plt.subplots(1, 1 + bool(backends), figsize=(4.2 + 4.2 * bool(backends), 3.6), dpi=110,
                             squeeze=False)
    a1 = axes[0][0]
    by = {h: {r["seed"]: r["test_miou"] for r in t1["records"] if r["head"] == h} for h in ("aspp", "ppm")}
    for s in sorted(set(by["aspp"]) | set(by["ppm"])):
        xs = [i for i, h in enumerate(("aspp", "ppm")) if s in by[h]]
        a1.plot(xs, [by[("aspp", "ppm")[i]][s] for i in xs], "o-", color="gray", alpha=0.7, lw=1)
    for i, h in enumerate(("aspp", "ppm")):
        r = t1["heads"][h]["test_miou"]
        if r:
            a1.errorbar(i, r["mean"], yerr=r["std"], fmt="s", color=f"C{i}", capsize=4, ms=8, zorder=3)
    a1.set_xticks([0, 1], [f"aspp {t1['channels']}", f"ppm {t1['channels']}"])
    a1.set_xlim(-0.5, 1.5)
    a1.set_ylabel("CamVid test mIoU (%)")
    a1.set_title("test mIoU (lines: one seed's network)", fontsize=9)
    a1.grid(axis="y", alpha=0.3)
    if backends:
        a2, w = axes[0][1], 0.38
        for i, h in enumerate(("aspp", "ppm")):
            f = [t1["fps"][h].get(b) or {"mean": 0.0, "std": 0.0} for b in backends]
            a2.bar([j + (i - 0.5) * w for j in range(len(backends))], [x["mean"] for x in f], w,
                   yerr=[x["std"] for x in f], capsize=3, color=f"C{i}", label=h)
        a2.set_xticks(range(len(backends)), backends)
        a2.set_ylabel(f"FPS ({t1['size'][0]}x{t1['size'][1]}, batch 1)")
        a2.set_title("speed of both heads on the same networks", fontsize=9)
        a2.legend(fontsize=8, frameon=False)
        a2.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
