"""``gasgnn latency measure | show | validate``: latency lookup tables on this machine."""

from __future__ import annotations

import argparse
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
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "latency",
        help="measure, show and validate latency lookup tables",
        description="Latency lookup tables: the measured latency of every op at every cell position and of "
                    "the fixed parts (stem, cell pre-processing, sums, concat, head), used by the search's "
                    "latency loss.",
    )
    lsub = p.add_subparsers(dest="latency_command", metavar="ACTION")

    m = lsub.add_parser(
        "measure", help="measure a table (resumes into an existing --out file)",
        description="Times every entry the search space needs on this device and writes the table; an "
                    "existing --out file is resumed: only its missing entries are measured.",
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
        "validate", help="compare the table's predictions with measured latencies of random networks",
        description="Samples random genotypes, builds each derived GASNet, measures its end-to-end latency "
                    "and reports Pearson, Spearman and MAPE against the table's prediction, per input size. "
                    "Missing table entries are measured first (and saved into --table).",
    )
    add_space_args(v)
    _device_args(v)
    v.add_argument("--table", type=Path, default=None,
                   help="table file, created or completed as needed (default: a table measured in memory)")
    v.add_argument("--sizes", type=int, nargs="+", metavar="H W",
                   help="input sizes as pairs H W (default: the space's --input-size)")
    v.add_argument("--n", type=int, default=20, help="random networks (default: %(default)s)")
    v.add_argument("--head", default="aspp", help="head of the networks (default: %(default)s)")
    v.add_argument("--head-channels", type=int, default=128, help="head width (default: %(default)s)")
    v.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    v.add_argument("--repeats", type=int, default=15, help="timed calls per network (default: %(default)s)")
    v.add_argument("--warmup", type=int, default=3, help="untimed calls per network (default: %(default)s)")
    v.add_argument("--anchors", type=int, default=8,
                   help="speed anchors: the costliest table entries, timed after every block of network calls so "
                        "the measurements are at the table's machine speed (0: raw wall times; default: %(default)s)")
    v.add_argument("--rounds", type=int, default=3,
                   help="round-robin passes over the networks (spreads load bursts; default: %(default)s)")
    v.add_argument("--json", action="store_true",
                   help="print the full results (with per-network times) as JSON")
    v.add_argument("--uniform", action="store_true",
                   help="uniform random networks (default: networks spanning the space's predicted latency range)")
    add_job_args(v, threads=None)
    v.set_defaults(func=run_validate, _parser=v, calibrate=False)

    c = lsub.add_parser(
        "calibrate", help="fit the table's scale and offset to a few measured whole networks",
        description="Measures --n networks spanning the space's latency range at each size, fits measured = "
                    "scale x predicted + offset, stores the fit in the table's metadata (used by predictions "
                    "and the search's reported latency) and saves --table. Refused on a busy machine.",
    )
    for a in v._actions:  # the same options as validate
        if a.option_strings and a.dest not in ("help",) and not any(s in c._option_string_actions
                                                                      for s in a.option_strings):
            c._add_action(a)
    c.set_defaults(func=run_validate, _parser=c, _job_parser=c, calibrate=True, n=10)

    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_measure(args: argparse.Namespace) -> int:
    from gasgnn.latency import LatencyTable

    space = space_from_args(args)
    sizes = _sizes(args.sizes, args._parser) or [tuple(space.input_size)]
    before = len(LatencyTable.load(args.out)) if args.out.exists() else 0
    table = LatencyTable.measure(
        space, device=args.device, dtype=args.dtype, batch=args.batch, input_size=sizes,
        repeats=args.repeats, warmup=args.warmup, progress=not args.no_progress, path=args.out,
        heads=args.heads, head_channels=args.head_channels,
    )
    summary = {"table": str(args.out), "entries": len(table), "measured": len(table) - before,
               "meta": table.meta}
    if args.json:
        emit_json(summary)
    else:
        print(f"{args.out}: {len(table)} entries ({len(table) - before} measured now) on "
              f"{table.meta['device_name']}, {table.dtype}, batch {table.batch}, "
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
    from gasgnn.latency import LatencyTable, calibrate, validate_with_noise

    space = space_from_args(args)
    sizes = _sizes(args.sizes, args._parser) or [tuple(space.input_size)]
    if args.table is not None and args.table.exists():
        table = LatencyTable.load(args.table)
    else:
        table = LatencyTable(device=args.device, dtype=args.dtype, batch=args.batch)
    kw = dict(n=args.n, head=args.head, head_channels=args.head_channels, seed=args.seed, warmup=args.warmup,
              repeats=args.repeats, rounds=args.rounds, anchors=args.anchors, measure_missing=True,
              path=None if args.table is None else str(args.table), progress=not args.no_progress)
    if args.calibrate:
        if args.table is None:
            raise ValueError("latency calibrate: --table FILE is required (the fit is stored in it)")
        res = calibrate(table, space, sizes, span=not args.uniform, **kw)
        table.save(args.table)
    else:
        res = validate_with_noise(table, space, sizes, span=not args.uniform, **kw)
    noisy = [r for r in res["sizes"] if r["noise_dominated"]]
    if args.json:
        emit_json({**res, "table": None if args.table is None else str(args.table), "meta": table.meta})
        return 3 if noisy else 0
    print(f"{res['n']} random networks ({res['head']} head, seed {res['seed']}) on "
          f"{table.meta['device_name']}, {res['threads']} threads; load average "
          f"{res['loadavg_before'][0]:.2f} -> {res['loadavg_after'][0]:.2f}")
    nz = res["noise"]
    print(f"machine noise: control op {nz['control_ms']:.3f} ms, repeat spread {100 * nz['repeat_spread']:.1f} %, "
          f"drift {100 * nz['drift']:.1f} %" + ("  BUSY" if nz["busy"] else ""))
    tn = res.get("table_noise") or {}
    if tn:
        busy = "  BUSY: re-measure the table" if tn.get("busy") else ""
        print(f"table noise when measured: {100 * tn['noise']:.1f} %{busy}")
    print(f"{'input':>10s} {'pearson':>8s} {'spearman':>8s} {'MAPE %':>7s} {'bias %':>7s} {'+-10 %':>7s} "
          f"{'range %':>8s} {'pred ms':>8s} {'meas ms':>8s}")
    for r in res["sizes"]:
        H, W = r["input_size"]
        mean = lambda v: sum(v) / len(v)  # noqa: E731
        rng = 100 * (max(r["measured_ms"]) / min(r["measured_ms"]) - 1) if r["measured_ms"] else math.nan
        mark = "  noise-dominated: NOT A RESULT" if r["noise_dominated"] else ""
        print(f"{f'{H}x{W}':>10s} {_f(r['pearson']):>8s} {_f(r['spearman']):>8s} {r['mape']:7.1f} "
              f"{r['bias']:7.1f} {100 * r['within_10pct']:7.0f} {rng:8.0f} {mean(r['predicted_ms']):8.2f} "
              f"{mean(r['measured_ms']):8.2f}{mark}")
        if "calibration" in r:
            cal = r["calibration"]
            print(f"{'':>10s} calibration: measured = {cal['scale']:.3f} x table + {cal['offset']:.3f} ms "
                  f"(MAPE {cal['mape_before']:.1f} % -> {cal['mape_after']:.1f} %), stored in {args.table}")
    print(f"({res['seconds']:.0f} s)")
    if noisy:
        print("gasgnn latency: the networks' latencies differ by less than the machine's noise (or the machine "
              "was busy): these correlations measure the noise, not the table. Re-run on a quiet machine.",
              file=sys.stderr)
        return 3
    return 0


def _f(v: float) -> str:
    return "nan" if math.isnan(v) else f"{v:.3f}"
