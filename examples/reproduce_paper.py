"""Test the GAS supplement's claims on CamVid at a training budget that can rank architectures.

One resumable command (docs/results.md):

    python examples/reproduce_paper.py --root /data/CamVid --out runs/gas_repro

Stages, in order (``--stage all`` runs them all; each skips finished jobs and resumes unfinished ones):

1. ``calibrate``: the ``skip_only`` ablation (no cell does any work), the hand-designed ``hand_light`` and
   the searched ``gcn_sim`` networks trained at each ``--budgets`` entry (cheapest first), ``--calib-seeds``
   seeds. The protocol's budget is the first at which ``skip_only`` is below both others by at least
   ``--calib-margin`` test-mIoU points and by more than two standard deviations.
2. ``guides``: one search per ``--variants`` entry and ``--seeds`` seed (a seed pairs the runs across
   variants: same seed, same split, same budget); random search is matched in latency to the ``--default``
   networks; every searched network and the ``skip_only`` / ``hand_light`` references trained at the
   chosen budget and evaluated on the test split.
3. ``sweep``: ``gcn_sim`` at the latency weights ``--sweep`` (``--sweep-seeds``) plus ``hand_sep``,
   trained at the chosen budget: the latency/mIoU Pareto front.
4. ``heads``: the supplement's Table 1: the ``--default`` networks of every seed trained with the ASPP and
   the PPM head at equal channels (``--heads-channels``), timed side by side in eager PyTorch and ONNX
   Runtime at ``--heads-size`` (:mod:`repro.table1`).
5. ``report``: times every network side by side, compares each variant with ``none`` (mean difference,
   95 % CI, paired t-test, Wilcoxon), counts the supplement's op statistics with every searched network
   walked down to one predicted latency (``--match-ms``), sets Table 1 beside the supplement's, writes
   ``OUT/results.json``, ``OUT/report.md`` and the figures.

``--stage device`` is the protocol for one scarce GPU window (:mod:`repro.device`): search and training
chains of every guide and seed packed onto one device, planned to end within ``--budget-s`` (``--plan``
prints the plan without a device), ``OUT/progress.json`` written after every job::

    python examples/reproduce_paper.py --stage device --device cuda --root data_pack/camvid \
        --size 360 480 --crop 360 480 --train-crop 360 480 --budget simple64_e6 --budget-s 480 --jobs 6 --plan

Every job is a subprocess (``python -m gasgnn ...``) with ``--threads`` torch threads, ``--jobs`` at a time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from repro import analysis, device, matched, protocol, table1  # noqa: E402
from repro.jobs import Budget, gasgnn_cmd, run_jobs  # noqa: E402

from gasgnn.search import SearchConfig  # noqa: E402
from gasgnn.utils import atomic_write_text, read_json, write_json  # noqa: E402

#: The package's default guide: the comparison's first variant, random search's latency match, Table 1's network.
DEFAULT = SearchConfig().guide
VARIANTS = list(dict.fromkeys([DEFAULT, "gcn_sim", "none", "fc", "random"]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a = p.add_argument
    a("--data", default="camvid", help="dataset ('synthetic' for a smoke run)")
    a("--root", default=None, help="dataset root (default: $GASGNN_CAMVID for camvid)")
    a("--out", type=Path, default=Path("runs/gas_repro"), help="experiment directory (resumed when it exists)")
    a("--fig-dir", type=Path, default=None, help="figures (default: OUT/figures)")
    a("--stage", choices=["all", "calibrate", "guides", "sweep", "heads", "report", "device"], default="all")
    a("--device", default="cpu", help="device of every job (cuda: the device stage packs jobs onto one GPU)")
    a("--jobs", type=int, default=2, help="subprocesses at a time")
    a("--threads", type=int, default=1, help="torch threads per subprocess and for the timing")
    a("--test-split", default="test", help="split of the final evaluation")
    s = p.add_argument_group("search protocol (every variant alike)")
    s.add_argument("--variants", nargs="+", default=VARIANTS, help="guides to compare; 'random' is random search")
    s.add_argument("--default", default=DEFAULT,
                   help="the guide random search is matched to in latency and Table 1 trains with both heads")
    s.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    s.add_argument("--num-cells", type=int, default=8)
    s.add_argument("--channels", type=int, default=8)
    s.add_argument("--num-classes", type=int, default=11, help="the dataset's classes (CamVid: 11)")
    s.add_argument("--size", type=int, nargs=2, default=[180, 240], help="deployment size (table, timing, eval)")
    s.add_argument("--crop", type=int, nargs=2, default=[90, 120], help="training crop of the searches")
    s.add_argument("--epochs", type=int, default=6)
    s.add_argument("--warmup-epochs", type=int, default=2)
    s.add_argument("--steps-per-epoch", type=int, default=20)
    s.add_argument("--batch-size", type=int, default=4)
    s.add_argument("--a-lr", type=float, default=3e-3)
    s.add_argument("--weight", type=float, default=0.1,
                   help="latency weight of the comparison (at 1 every search of this space ends all-skip)")
    s.add_argument("--latency-form", choices=["linear", "log", "target"], default="log")
    s.add_argument("--target-ms", type=float, default=None, help="latency target (target form), table ms")
    s.add_argument("--random-samples", type=int, default=6)
    s.add_argument("--random-steps", type=int, default=20, help="x --random-samples = a GAS search's weight steps")
    t = p.add_argument_group("training protocol (every network alike)")
    t.add_argument("--budgets", nargs="+", default=["aspp128_e6", "simple64_e6", "simple64_e12"],
                   help="candidate budgets HEAD<channels>_e<epochs>, cheapest first")
    t.add_argument("--budget", default=None, help="skip the calibration's choice and use this budget")
    t.add_argument("--calib-seeds", type=int, nargs="+", default=[0, 1])
    t.add_argument("--calib-margin", type=float, default=3.0, help="mIoU points skip_only must trail by")
    t.add_argument("--train-crop", type=int, nargs=2, default=[180, 240])
    t.add_argument("--scale-range", type=float, nargs=2, default=[0.4, 0.75])
    t.add_argument("--lr", type=float, default=0.05)
    t.add_argument("--train-max-iters", type=int, default=None, help="cap on iterations (smoke runs)")
    w = p.add_argument_group("latency-weight sweep")
    w.add_argument("--sweep", type=float, nargs="*", default=[0.0, 0.3, 1.0],
                   help="latency weights (the comparison's --weight joins them from the guide runs)")
    w.add_argument("--sweep-seeds", type=int, nargs="*", default=[0, 1])
    w.add_argument("--match-ms", type=float, default=None,
                   help="common predicted latency of the op statistics at matched latency (default: the lowest "
                        "of the variants' mean predicted latencies)")
    w.add_argument("--bench-iters", type=int, default=40, help="timed calls per network and round")
    h = p.add_argument_group("Table 1: ASPP against PPM (stage heads)")
    h.add_argument("--heads-channels", type=int, default=64, help="channels of both heads")
    h.add_argument("--heads-size", type=int, nargs=2, default=[360, 480], help="size of the speed comparison")
    d = p.add_argument_group("one device window (stage device)")
    d.add_argument("--budget-s", type=float, default=480.0,
                   help="seconds the device stage plans to end within (a device command gives at most 540)")
    d.add_argument("--gain", type=float, default=3.0,
                   help="how many times the work of one chain the processes sharing the device get done at once")
    d.add_argument("--guides", nargs="+", default=None,
                   help="guides of the device stage (default: the GAS variants of --variants)")
    d.add_argument("--plan", action="store_true", help="print the device stage's plan and exit (no device needed)")
    args = p.parse_args(argv)
    args.keep_on = args.device if args.stage == "device" and args.device.startswith("cuda") else None
    args.fig_dir = args.fig_dir or args.out / "figures"
    try:
        args.budget_list = [Budget.parse(b) for b in args.budgets]
        if args.budget:
            Budget.parse(args.budget)
    except ValueError as e:
        p.error(str(e))
    from gasgnn.ggm import GUIDES

    unknown = sorted(set(args.variants) - set(GUIDES.names()) - {"random"})
    if unknown:
        p.error(f"--variants: unknown {unknown}; choose from {[*GUIDES.names(), 'random']}")
    if args.default not in args.variants:
        p.error(f"--variants: the --default guide {args.default} is needed (random search's latency target, Table 1)")
    if args.stage in ("all", "calibrate") and "gcn_sim" not in args.variants:
        p.error("--variants: gcn_sim is needed by the calibration (its searched networks)")
    args.costs = device.Costs.defaults(args.device)
    return args


def table(args: argparse.Namespace) -> None:
    """One latency table at the deployment size for every head used, measured before any job runs."""
    import subprocess

    for head, ch in sorted({("aspp", 128)} | {(b.head, b.head_channels) for b in args.budget_list}):
        r = subprocess.run(gasgnn_cmd(
            "latency", "measure", "--num-cells", str(args.num_cells), "--channels", str(args.channels),
            "--num-classes", str(args.num_classes), "--input-size", *map(str, args.size), "--sizes",
            *map(str, args.size), "--heads", head, "--head-channels", str(ch), "--threads", str(args.threads),
            "--device", args.device, "--out", str(args.out / "latency_table.json")))
        if r.returncode != 0:  # its own message is printed above
            sys.exit(f"the latency table {args.out / 'latency_table.json'} could not be measured (exit {r.returncode})")


def chosen_budget(args: argparse.Namespace) -> Budget:
    if args.budget:
        return Budget.parse(args.budget)
    cal = protocol.calibration(args, args.budget_list)
    if cal["chosen"] is None:
        sys.exit("calibration: no budget separates skip_only from hand_light and the searched networks "
                 f"(see {args.out / 'report.md'}); add a larger one to --budgets or pass --budget")
    return Budget.parse(cal["chosen"])


def run(args: argparse.Namespace) -> None:
    logs, refs = args.out / "logs", protocol.references(args)
    gas = [v for v in args.variants if v != "random"]
    if args.stage in ("all", "calibrate"):
        run_jobs(protocol.gas_search_jobs(args, ["gcn_sim"], args.calib_seeds), args.jobs, logs, 1, "searches")
        nets = protocol.calibration_networks(args, refs)
        for b in args.budget_list:
            run_jobs(protocol.train_jobs(args, nets, b, "calib"), args.jobs, logs, args.threads, f"calibrate {b.name}")
            if protocol.calibration(args, [b])["chosen"]:
                break  # the cheapest budget that separates is the protocol's; larger ones are not needed
    if args.stage in ("all", "guides"):
        budget = chosen_budget(args)
        for s in args.seeds:  # seed by seed, so an interrupted run leaves complete pairs
            run_jobs(protocol.gas_search_jobs(args, gas, [s]), args.jobs, logs, args.threads, f"searches, seed {s}")
            if "random" in args.variants:
                run_jobs(protocol.random_jobs(args, [s]), args.jobs, logs, args.threads, f"random search, seed {s}")
            nets = protocol.networks(args, args.variants, [s], refs)
            run_jobs(protocol.train_jobs(args, nets, budget), args.jobs, logs, args.threads, f"training, seed {s}")
    if args.stage in ("all", "heads"):
        budget = chosen_budget(args)
        run_jobs(table1.jobs(args, budget), args.jobs, logs, args.threads, "Table 1: ASPP and PPM heads")
    if args.stage in ("all", "sweep") and args.sweep:
        budget = chosen_budget(args)
        run_jobs(protocol.sweep_jobs(args), args.jobs, logs, args.threads, "sweep searches")
        nets = [(f"gcn_sim_w{w:g}", s, protocol.sweep_dir(args, w, s) / "genotype.json")
                for s in args.sweep_seeds for w in args.sweep]
        nets += [("hand_sep", s, refs["hand_sep"]) for s in args.sweep_seeds]
        run_jobs(protocol.train_jobs(args, nets, budget), args.jobs, logs, args.threads, "sweep training")


def report(args: argparse.Namespace, wall_minutes: float | None) -> str:
    refs = protocol.references(args)
    cal = protocol.calibration(args, args.budget_list)
    budget = Budget.parse(args.budget or cal["chosen"]) if (args.budget or cal["chosen"]) else None
    results = {"calibration": cal, "budget": budget.name if budget else None, "records": [], "guides": [],
               "pareto": []}
    how = "given by --budget" if args.budget else "the first that separates"
    lines = ["## Budget calibration", "", analysis.calibration_table(cal), f"Budget: {results['budget']} ({how})", ""]
    if budget is not None:
        genos = {f"{n}_s{s}": g for n, s, g in protocol.networks(args, args.variants, args.seeds, refs)}
        genos.update({f"gcn_sim_w{w:g}_s{s}": protocol.sweep_dir(args, w, s) / "genotype.json"
                      for s in args.sweep_seeds for w in args.sweep})
        genos.update({f"hand_sep_s{s}": refs["hand_sep"] for s in args.sweep_seeds})
        recs = analysis.collect(args, budget.name, genos)
        order = [*args.variants, "skip_only", "hand_light"]
        results["records"], results["guides"] = recs, analysis.compare(recs, order)
        lines += [f"## Guides at {budget.name} (paired by seed; Δ and tests against 'none')", "",
                  analysis.guide_table(results["guides"])]
        diagnostics = analysis.diagnostics_table(results["guides"])
        if diagnostics:
            lines += ["## The guides at the end of their searches (last epoch; docs/ggm.md)", "", diagnostics]
        results["matched"] = matched.matched_stats(args, budget, args.variants, args.seeds, args.match_ms)
        lines += ["## The supplement's op statistics at matched latency", "", matched.matched_table(results["matched"])]
        sweep_names = [f"gcn_sim_w{w:g}" for w in args.sweep]
        results["pareto"] = analysis.compare(recs, [*sweep_names, *args.variants, "skip_only", "hand_light",
                                                    "hand_sep"], baseline="skip_only")
        lines += ["## Latency against accuracy (the sweep, the guides, the references)", "",
                  analysis.pareto_table(results["pareto"])]
        t1 = table1.table1(args, budget)
        if t1["records"]:
            results["table1"] = t1
            lines += ["## Table 1: ASPP and PPM heads at equal channels (paired by seed)", "",
                      table1.table1_table(t1)]
    results["meta"] = {"date": time.strftime("%Y-%m-%d"), "threads": args.threads, "wall_minutes": wall_minutes,
                       "args": {k: str(v) for k, v in vars(args).items()}}
    write_json(args.out / "results.json", results)
    text = "\n".join(lines) + "\n"
    atomic_write_text(args.out / "report.md", text)
    for path in analysis.figures(args, results):
        print(f"figure: {path}")
    return text


def device_stage(args: argparse.Namespace) -> None:
    """The device window (:mod:`repro.device`): plan the chains, then run what fits."""
    from gasgnn.data import build_dataset

    budget = Budget.parse(args.budget or args.budgets[0])
    guides = args.guides or [v for v in args.variants if v != "random"]
    kw = {"root": args.root} if args.root else {}
    n_train = len(build_dataset(args.data, split="train", **kw))
    n_test = len(build_dataset(args.data, split=args.test_split, **kw))
    items = device.chains(args, guides, args.seeds, budget)
    args.costs, calibrated = device.measured_costs(args, args.costs, budget, n_train)
    rows = device.plan(args, items, device.estimate(args, args.costs, budget, n_train, n_test), args.jobs, args.gain)
    device.print_plan(rows, args.costs, calibrated, args)
    if args.plan:
        return
    if not (args.out / "latency_table.json").is_file():
        table(args)
    device.run_chains(args, items, {r["chain"] for r in rows if r["selected"]}, args.out / "logs")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.stage == "device":
        device_stage(args)
        return
    t0 = time.perf_counter()
    if args.stage != "report":
        if not (args.out / "latency_table.json").is_file() or args.stage in ("all", "calibrate"):
            table(args)  # resumes: only missing entries are measured
        run(args)
    prev = read_json(args.out / "results.json")["meta"]["wall_minutes"] if (args.out / "results.json").is_file() \
        else None
    wall = (time.perf_counter() - t0) / 60 + (prev or 0.0) if args.stage == "all" else prev
    print(report(args, wall))


if __name__ == "__main__":
    main()
