"""``gasgnn compare``: runs side by side (GGM, FC, random, ...): a statistics table and a figure."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gasgnn.commands._common import emit_json

COLUMNS = (
    ("name", "name", "{}"),
    ("guide", "guide", "{}"),
    ("light_ops", "light ops", "{:d}"),
    ("large_rf_last4", "large-RF last 4", "{:d}"),
    ("diversity_neighbour", "neighbour div.", "{:.3f}"),
    ("predicted_latency_ms", "pred. ms", "{:.2f}"),
    ("miou", "mIoU", "{:.3f}"),
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="compare runs: light-weight ops, large-RF ops, cell diversity, latency, mIoU",
        description=(
            "Puts several runs (run directories or genotype files) side by side: prints a table of the GAS "
            "supplement's statistics with predicted latency and mIoU, and draws the latency/mIoU Pareto "
            "scatter with bar charts of the statistics."
        ),
    )
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run directories or genotype files")
    p.add_argument("--out", type=Path, default=Path("runs/compare"),
                   help="figure folder (default: %(default)s)")
    p.add_argument("--format", choices=("png", "svg", "pdf"), default="png",
                   help="figure format (default: %(default)s)")
    p.add_argument("--table", type=Path, default=None,
                   help="latency table used to predict every run's latency")
    p.add_argument("--json", action="store_true", help="print the rows and figure path as JSON")
    p.set_defaults(func=run)


def format_table(rows: list[dict[str, Any]]) -> str:
    """The comparison rows as an aligned text table (``-`` for unknown values)."""

    def cell(v: Any, fmt: str) -> str:
        if v is None:
            return "-"
        try:
            return fmt.format(v)
        except (ValueError, TypeError):
            return str(v)

    head = [h for _, h, _ in COLUMNS]
    body = [[cell(r.get(k), f) for k, _, f in COLUMNS] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(x.ljust(w) if i < 2 else x.rjust(w) for i, (x, w) in enumerate(zip(line, widths)))
             for line in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from gasgnn.runner import load_run, load_table
    from gasgnn.viz import draw_comparison, run_row, save_figure

    table = load_table(args.table) if args.table is not None else None
    rows = [run_row(load_run(p), table) for p in args.runs]
    path = save_figure(draw_comparison(rows), args.out / f"compare.{args.format}")
    if args.json:
        emit_json({"runs": rows, "figure": str(path)})
        return 0
    print(format_table(rows))
    print(f"figure: {path}")
    return 0
