"""``gasgnn latency measure | show | validate | calibrate | predict``: latency lookup tables on this machine."""

from __future__ import annotations

import argparse
import copy
import math
import sys
from pathlib import Path

from gasgnn.commands._common import add_space_args, emit_json, space_from_args
from gasgnn.commands._config import add_job_args


def _sizes(values: list[int] | None, p: argparse.ArgumentParser) -> list[tuple[int, int]] | None:
    if not values:
        return None
    if len(values) % 2:
        p.error(f"--sizes takes pairs H W, got {len(values)} numbers")
    return [(values[i], values[i + 1]) for i in range(0, len(values), 2)]


def _device_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("device")
    g.add_argument("--device", default="cpu", help="torch device to time on (default: %(default)s)")
    g.add_argument("--dtype", default="float32", help="tensor dtype (default: %(default)s)")
    g.add_argument("--batch", type=int, default=1, help="batch size (default: %(default)s)")
    _backend_arg(g)
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def _backend_arg(g: argparse._ActionsContainer) -> None:
    g.add_argument("--backend", default=None, metavar="NAME",
                   help="latency backend the pieces and networks run on: torch (eager), onnxruntime, torch-compile, "
                        "or one you registered in gasgnn.latency.LATENCY_BACKENDS (default: the table's own; torch "
                        "for a new table). A table is never measured or validated on another backend than its own")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "latency",
        help="measure, show, validate, calibrate latency lookup tables and predict with them",
        description="Latency lookup tables: the measured latency of every op at every cell position and of "
                    "the fixed parts (stem, cell pre-processing, sums, concat, head), used by the search's "
                    "latency loss, measured on a latency backend (eager torch, onnxruntime, torch-compile).",
    )
    lsub = p.add_subparsers(dest="latency_command", metavar="ACTION")

    m = lsub.add_parser(
        "measure", help="measure a table (resumes into an existing --out file)",
        description="Times every entry the search space needs on this device and backend and writes the table; "
                    "an existing --out file is resumed: only its missing entries are measured.",
    )
    add_space_args(m)
    _device_args(m)
    m.add_argument("--sizes", type=int, nargs="+", metavar="H W",
                   help="input sizes to cover, as pairs H W (default: the space's --input-size)")
    m.add_argument("--heads", nargs="+", default=["aspp", "ppm"],
                   help="heads to cover (default: %(default)s)")
    m.add_argument("--head-channels", type=int, default=128, help="head width (default: %(default)s)")
    m.add_argument("--repeats", type=int, default=None,
                   help="timed calls per entry, median taken (default: 50)")
    m.add_argument("--warmup", type=int, default=None, help="untimed calls per entry (default: 10)")
    m.add_argument("--out", type=Path, default=Path("latency.json"), help="table file (default: %(default)s)")
    m.add_argument("--json", action="store_true", help="print a JSON summary")
    add_job_args(m, threads=None)
    m.set_defaults(func=run_measure, _parser=m)

    s = lsub.add_parser("show", help="print a table's metadata and entries",
                        description="Prints a latency table's metadata and its entries.")
    s.add_argument("table", type=Path, help="table file")
    s.add_argument("--kind", help="only entries of this kind (op, stem, pre, sum, concat, head, upsample)")
    s.add_argument("--json", action="store_true", help="print the table as JSON")
    s.set_defaults(func=run_show)

    v = lsub.add_parser(
        "validate", help="compare the table with measured networks, and the machine with itself",
        description="Draws --n networks spanning the space's latency range (from the lightest to the heaviest "
                    "derivable network, stratified in predicted latency) and --near-n networks near a target "
                    "latency (--near-ms), builds each derived GASNet on the table's backend, times every network "
                    "twice in interleaved rounds and reports, per input size: the table against the measurement "
                    "(Spearman, Kendall, MAPE, share within +-10 %, measured range) beside the machine's own "
                    "test-retest agreement, over the range and in the near-target band, with a verdict: the table "
                    "ranks as well as the machine repeats itself when band Spearman >= 0.9 x band retest "
                    "Spearman. Exit status 3 when the machine was too noisy for a result. Missing table entries "
                    "are measured first (and saved into --table).",
    )
    add_space_args(v)
    _device_args(v)
    v.add_argument("--table", type=Path, default=None,
                   help="table file, created or completed as needed (default: a table measured in memory)")
    v.add_argument("--sizes", type=int, nargs="+", metavar="H W",
                   help="input sizes as pairs H W; networks are drawn at the first (default: the space's "
                        "--input-size)")
    v.add_argument("--n", type=int, default=20,
                   help="networks spanning the latency range, the lightest and heaviest included (default: "
                        "%(default)s)")
    v.add_argument("--near-ms", type=float, default=None,
                   help="target latency (ms, at the first size) of the near-target band (default: the median of "
                        "the range networks' predictions)")
    v.add_argument("--near-n", type=int, default=10, help="networks in the near-target band (default: %(default)s)")
    v.add_argument("--near-width", type=float, default=0.1,
                   help="half-width of the band, relative to --near-ms (default: %(default)s, i.e. +-10 %%)")
    v.add_argument("--head", default="aspp", help="head of the networks (default: %(default)s)")
    v.add_argument("--head-channels", type=int, default=128, help="head width (default: %(default)s)")
    v.add_argument("--seed", type=int, default=0, help="drawing seed (default: %(default)s)")
    v.add_argument("--repeats", type=int, default=20,
                   help="timed calls per network in each of the two series (default: %(default)s)")
    v.add_argument("--warmup", type=int, default=3, help="untimed calls per network (default: %(default)s)")
    v.add_argument("--anchors", type=int, default=8,
                   help="CPU speed anchors: the costliest table entries, timed after every block of network calls "
                        "so the measurements are at the table's machine speed (0: raw wall times; never on CUDA; "
                        "default: %(default)s)")
    v.add_argument("--rounds", type=int, default=5,
                   help="round-robin passes over the networks per series (spreads load bursts; default: "
                        "%(default)s)")
    v.add_argument("--json", action="store_true",
                   help="print the full results (with per-network times and genotypes) as JSON")
    add_job_args(v, threads=None)
    v.set_defaults(func=run_validate, _parser=v, calibrate=False)

    c = lsub.add_parser(
        "calibrate", help="fit the table's scale and offset to a few measured whole networks",
        description="Measures --n networks spanning the space's latency range (and --near-n near a target) at "
                    "each size, fits measured = scale x predicted + offset, stores the fit in the table's "
                    "metadata (used by predictions and the search's reported latency) and saves --table. Refused "
                    "on a busy machine.",
    )
    for a in v._actions:  # the same options as validate (copies: calibrate's defaults must not change validate's)
        if a.option_strings and a.dest not in ("help",) and not any(s in c._option_string_actions
                                                                      for s in a.option_strings):
            c._add_action(copy.copy(a))
    c.set_defaults(func=run_validate, _parser=c, _job_parser=c, calibrate=True, n=10, near_n=4)

    r = lsub.add_parser(
        "predict", help="the table's latency of a derived network",
        description="Predicts the latency of a genotype's GASNet from a table, per input size, with the "
                    "breakdown by kind of piece (and the table's calibration when it has one).",
    )
    r.add_argument("--table", type=Path, required=True, help="table file")
    r.add_argument("--genotype", required=True, help="genotype JSON file or reference name (hand_sep, hand_light)")
    r.add_argument("--sizes", type=int, nargs="+", metavar="H W",
                   help="input sizes as pairs H W (default: the genotype space's input size)")
    r.add_argument("--head", default="aspp", help="head (default: %(default)s)")
    r.add_argument("--head-channels", type=int, default=128, help="head width (default: %(default)s)")
    r.add_argument("--measure-missing", action="store_true",
                   help="measure entries the table lacks on its device and backend and save them into --table")
    _backend_arg(r)
    r.add_argument("--json", action="store_true", help="print the predictions as JSON")
    add_job_args(r, threads=None)
    r.set_defaults(func=run_predict, _parser=r)

    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_measure(args: argparse.Namespace) -> int:
    from gasgnn.latency import LatencyTable, check_backend

    space = space_from_args(args)
    sizes = _sizes(args.sizes, args._parser) or [tuple(space.input_size)]
    before = 0
    if args.out.exists():
        old = LatencyTable.load(args.out)
        check_backend(old, args.backend, str(args.out))
        before = len(old)
    table = LatencyTable.measure(
        space, device=args.device, dtype=args.dtype, batch=args.batch, input_size=sizes,
        repeats=args.repeats, warmup=args.warmup, progress=not args.no_progress, path=args.out,
        heads=args.heads, head_channels=args.head_channels, backend=args.backend,
    )
    summary = {"table": str(args.out), "entries": len(table), "measured": len(table) - before,
               "meta": table.meta}
    if args.json:
        emit_json(summary)
    else:
        print(f"{args.out}: {len(table)} entries ({len(table) - before} measured now) on "
              f"{table.meta['device_name']}, backend {table.backend}, {table.dtype}, batch {table.batch}, "
              f"{table.meta['threads']} threads")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from gasgnn.latency import KINDS, LatencyTable

    table = LatencyTable.load(args.table)
    if args.kind is not None and args.kind not in KINDS:
        raise ValueError(f"--kind must be one of {list(KINDS)}, got '{args.kind}'")
    items = [(k, ms) for k, ms in table.items() if args.kind in (None, k.kind)]
    if args.json:
        obj = table.to_dict()
        obj["entries"] = [e for e in obj["entries"] if args.kind in (None, e["kind"])]
        emit_json(obj)
        return 0
    print(f"latency table {args.table}")
    for f, v in table.meta.items():
        print(f"  {f:12s} {v}")
    print(f"  {'entries':12s} {len(table)}")
    print()
    print(f"{'kind':9s} {'entry':60s} {'ms':>10s}")
    for k, ms in items:
        desc = ", ".join(f"{f}={v}" for f, v in zip(KINDS[k.kind], k.params))
        print(f"{k.kind:9s} {desc:60s} {ms:10.4f}")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from gasgnn.latency import DEFAULT_BACKEND, LatencyTable, calibrate, validate

    space = space_from_args(args)
    sizes = _sizes(args.sizes, args._parser) or [tuple(space.input_size)]
    if args.table is not None and args.table.exists():
        table = LatencyTable.load(args.table)
    else:
        table = LatencyTable(device=args.device, dtype=args.dtype, batch=args.batch,
                             backend=args.backend or DEFAULT_BACKEND)
    kw = dict(n=args.n, near_ms=args.near_ms, near_n=args.near_n, near_width=args.near_width, head=args.head,
              head_channels=args.head_channels, seed=args.seed, warmup=args.warmup, repeats=args.repeats,
              rounds=args.rounds, anchors=args.anchors, measure_missing=True, backend=args.backend,
              path=None if args.table is None else str(args.table), progress=not args.no_progress)
    if args.calibrate:
        if args.table is None:
            raise ValueError("latency calibrate: --table FILE is required (the fit is stored in it)")
        res = calibrate(table, space, sizes, **kw)
        table.save(args.table)
    else:
        res = validate(table, space, sizes, **kw)
    noisy = [r for r in res["sizes"] if r["verdict"]["status"] == "not_a_result"]
    if args.json:
        emit_json({**res, "table": None if args.table is None else str(args.table), "meta": table.meta})
        return 3 if noisy else 0
    _print_validation(res, table, args)
    if noisy:
        print("gasgnn latency: the machine was too noisy (busy, or it does not repeat its own ranking): these "
              "figures measure the noise, not the table. Re-run on a quiet machine.", file=sys.stderr)
        return 3
    return 0


def _print_validation(res: dict, table: object, args: argparse.Namespace) -> None:
    meta = table.meta  # type: ignore[attr-defined]
    H0, W0 = res["sizes"][0]["input_size"]
    print(f"{res['n']} networks over the latency range + {res['near_n']} near {res['near_ms']:.2f} ms "
          f"(+-{100 * res['near_width']:.0f} % at {H0}x{W0}), {res['head']} head, seed {res['seed']}, on "
          f"{meta['device_name']}, backend {res['backend']}, {res['threads']} threads; load average "
          f"{res['loadavg_before'][0]:.2f} -> {res['loadavg_after'][0]:.2f}")
    nz = res["noise"]
    print(f"machine noise: control op {nz['control_ms']:.3f} ms, repeat spread {100 * nz['repeat_spread']:.1f} %, "
          f"drift {100 * nz['drift']:.1f} %" + ("  BUSY" if nz["busy"] else ""))
    tn = res.get("table_noise") or {}
    if tn:
        busy = "  BUSY: re-measure the table" if tn.get("busy") else ""
        print(f"table noise when measured: {100 * tn['noise']:.1f} %{busy}")
    print(f"{'':>9s} | {'table over the range':^38s} | {'retest':^14s} | {'near-target band':^28s}")
    print(f"{'input':>9s} | {'spearman':>8s} {'kendall':>7s} {'MAPE %':>6s} {'+-10 %':>6s} {'range x':>7s} | "
          f"{'spearman':>8s} {'MAPE %':>5s} | {'spearman':>8s} {'retest':>7s} {'MAPE %':>6s}")
    for r in res["sizes"]:
        H, W = r["input_size"]
        print(f"{f'{H}x{W}':>9s} | {_f(r['spearman']):>8s} {_f(r['kendall']):>7s} {r['mape']:6.1f} "
              f"{100 * r['within_10']:6.0f} {r['range_ratio']:7.2f} | {_f(r['retest_spearman']):>8s} "
              f"{r['retest_mape']:5.1f} | {_f(r['band_spearman']):>8s} {_f(r['band_retest_spearman']):>7s} "
              f"{_f(r['band_mape'], '.1f'):>6s}")
        print(f"{'':>9s}   {r['verdict']['text']}")
        sp = r.get("anchor_speed")
        if sp:
            print(f"{'':>9s}   speed anchors: the machine ran at {sp['median']:.2f}x the table's time "
                  f"({sp['min']:.2f}-{sp['max']:.2f}); measurements divided by it")
        if "calibration" in r:
            cal = r["calibration"]
            print(f"{'':>9s}   calibration: measured = {cal['scale']:.3f} x table + {cal['offset']:.3f} ms "
                  f"(MAPE {cal['mape_before']:.1f} % -> {cal['mape_after']:.1f} %), stored in {args.table}")
    print(f"({res['seconds']:.0f} s)")


def run_predict(args: argparse.Namespace) -> int:
    from gasgnn.genotype import resolve_genotype
    from gasgnn.latency import LatencyTable, check_backend

    table = LatencyTable.load(args.table)
    check_backend(table, args.backend, str(args.table))
    g = resolve_genotype(args.genotype)
    if g.space is None:
        raise ValueError(f"--genotype {args.genotype}: the genotype carries no search space")
    sizes = _sizes(args.sizes, args._parser) or [tuple(g.space.input_size)]
    out = []
    for size in sizes:
        keys = [k for k, _ in table.genotype_keys(g, g.space, size, args.head, args.head_channels)]
        table.ensure_keys(keys, measure_missing=args.measure_missing, path=args.table)
        parts = table.predict(g, args.head, g.space, size, args.head_channels, breakdown=True)
        out.append({"input_size": list(size), "predicted_ms": parts["total"], "breakdown": parts})
    res = {"table": str(args.table), "backend": table.backend, "device_name": table.meta["device_name"],
           "genotype": args.genotype, "head": args.head, "sizes": out}
    if args.json:
        emit_json(res)
        return 0
    print(f"{args.genotype} ({args.head} head) on {table.meta['device_name']}, backend {table.backend}:")
    for r in out:
        H, W = r["input_size"]
        parts = ", ".join(f"{k} {v:.2f}" for k, v in r["breakdown"].items() if k != "total")
        print(f"  {H}x{W}: {r['predicted_ms']:.2f} ms ({1000 / r['predicted_ms']:.1f} FPS; {parts})")
    return 0


def _f(v: float, fmt: str = ".3f") -> str:
    return "nan" if math.isnan(v) else format(v, fmt)
