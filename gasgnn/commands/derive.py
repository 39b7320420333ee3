"""``gasgnn derive``: a search run's network under a latency budget, without searching again."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from gasgnn.commands._common import emit_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "derive",
        help="derive a search run's network under a latency budget (ms), from its final alpha'",
        description=(
            "Re-derives the network of a finished search (its final alpha', alpha_history.pt) so that the "
            "latency table predicts at most --target-ms: starting from the run's genotype, the kept edges "
            "keep their inputs and, one at a time, the edge that gives up the least architecture weight per "
            "millisecond saved takes a cheaper op, until the network fits. A network already under the "
            "target is written unchanged. Example: gasgnn derive runs/search --target-ms 12 --out g12.json"
        ),
    )
    p.add_argument("run", type=Path, metavar="RUN", help="search run directory (genotype.json, alpha_history.pt)")
    p.add_argument("--target-ms", type=float, required=True, help="latency budget in table milliseconds")
    p.add_argument("--out", type=Path, required=True, help="genotype JSON file to write")
    p.add_argument("--table", type=Path, default=None,
                   help="latency table of the target device (default: the run's own, as in its config.json)")
    p.add_argument("--head", default="aspp", help="head of the deployed network (default: %(default)s)")
    p.add_argument("--head-channels", type=int, default=128, help="head width (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gasgnn.latency import LatencyTable, derive_under_latency
    from gasgnn.runner import RunDir, check_out_path, load_run, run_table

    if not args.run.is_dir():
        raise ValueError(f"RUN {args.run} is not a directory (a search run holds genotype.json and alpha_history.pt)")
    if not (math.isfinite(args.target_ms) and args.target_ms > 0):
        raise ValueError(f"--target-ms must be a finite number > 0, got {args.target_ms}")
    check_out_path(args.out, "--out", is_dir=False)
    if args.out.exists() and not args.overwrite:
        raise ValueError(f"--out {args.out} exists; pass --overwrite to replace it, or choose another --out")
    run = load_run(args.run)  # checks alpha_history.pt against the genotype's space
    if run.alpha_history is None or run.alpha_history.shape[0] == 0:
        raise ValueError(f"RUN {args.run} has no alpha_history.pt; derive needs a finished GAS search "
                         "(random search keeps no alpha)")
    start = run.genotype
    if start.space is None:
        raise ValueError(f"{RunDir(args.run) / RunDir.GENOTYPE} carries no search space; derive needs it")
    if args.table is not None:
        if not args.table.is_file():
            raise ValueError(f"--table {args.table}: no such file")
        table = LatencyTable.load(args.table)
    else:
        table = run_table(run)
        if table is None:
            raise ValueError(f"RUN {args.run}: {run.notes[-1]}; pass --table")
    kw = {"head": args.head, "head_channels": args.head_channels}
    before = float(table.predict(start, **kw))
    g, pred = derive_under_latency(start.space, run.alpha_history[-1], table, args.target_ms, genotype=start, **kw)
    g.save(args.out)
    changed = sum(a != b for a, b in zip(start.ops(), g.ops()))
    result = {"out": str(args.out), "target_ms": args.target_ms, "before_ms": before, "predicted_ms": pred,
              "changed_edges": changed, "edges": len(g.ops())}
    if args.json:
        emit_json(result)
        return 0
    print(f"{args.out}: {pred:.2f} ms predicted (was {before:.2f} ms; target {args.target_ms:.2f} ms), "
          f"{changed} of {len(g.ops())} edges took a cheaper op")
    return 0
