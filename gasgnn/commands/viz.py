"""``gasgnn viz``: every figure of a run (or a genotype file) and its analysis statistics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gasgnn.commands._common import emit_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "viz",
        help="draw a run's network, cells, alpha history and curves, and print its statistics",
        description=(
            "Reads a run directory (genotype.json, and when present config.json, summary.json, metrics.csv, "
            "alpha_history.pt, latency_table.json) or a lone genotype.json, writes its figures and prints "
            "the GAS supplement's statistics: light-weight ops, large-receptive-field ops in the last four "
            "cells, per-stage op histograms and cell-level diversity."
        ),
    )
    p.add_argument("run", type=Path, metavar="RUN_DIR|GENOTYPE_JSON", help="run directory or genotype file")
    p.add_argument("--out", type=Path, default=None,
                   help="figure folder (default: RUN_DIR/figures, or figures/ beside the genotype file)")
    p.add_argument("--format", choices=("png", "svg", "pdf"), default="png",
                   help="figure format (default: %(default)s)")
    p.add_argument("--cells", action="store_true", help="also draw every cell on its own")
    p.add_argument("--table", type=Path, default=None,
                   help="latency table for the predicted (per-cell) latency "
                        "(default: the run's config.json 'latency_table' or latency_table.json)")
    p.add_argument("--dpi", type=float, default=None, help="PNG resolution (default: each figure's own)")
    p.add_argument("--json", action="store_true", help="print the statistics and figure paths as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gasgnn.runner import load_run, load_table
    from gasgnn.viz import draw_run, format_analysis

    r = load_run(args.run)
    table = load_table(args.table) if args.table is not None else None
    written, notes, stats = draw_run(r, args.out, args.format, args.cells, table, args.dpi)
    if args.json:
        emit_json({"run": str(r.path), "name": r.name, "guide": r.guide, "summary": r.summary,
                   "analysis": stats, "figures": [str(w) for w in written], "notes": notes})
        return 0
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    print(f"run: {r.path} (name: {r.name}, guide: {r.guide or '-'})")
    print(format_analysis(stats))
    folder = written[0].parent if written else args.out
    print(f"figures ({len(written)}) in {folder}: " + ", ".join(w.name for w in written))
    return 0
