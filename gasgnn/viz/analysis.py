"""Analysis statistics of derived networks and search runs (the numbers behind the GAS supplement's
Figures 1-3), and the reader of a run directory.

All statistics read the op metadata from the one op registry (:data:`gasgnn.space.ops.OPS`): an op is
*light-weight* when ``OPS[name].light`` (none, max pooling, skip) and has a *large receptive field*
when ``OPS[name].large_rf`` (dilation 4 or 8).

Example::

    from gasgnn.viz.analysis import analyze, format_analysis
    stats = analyze(genotype)              # JSON-serialisable dict
    print(format_analysis(stats))
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from gasgnn.genotype import CellGenotype, Genotype, GenotypeError
from gasgnn.models import GASNet
from gasgnn.runner import Run
from gasgnn.space import OPS
from gasgnn.utils import count_params

DIVERSITY_DEFINITION = (
    "distance(i, j) = 1 - |E_i & E_j| / |E_i | E_j|, where E_k is the set of (src, dst, op) kept edges "
    "of cell k (1 - Jaccard similarity; 0 = identical cells, 1 = no edge in common)"
)
LAST_CELLS = 4  # the supplement counts large-receptive-field ops in the last four cells


def _is_light(op: str) -> bool:
    spec = OPS.get(op, None)
    return bool(spec and spec.light)


def _is_large_rf(op: str) -> bool:
    spec = OPS.get(op, None)
    return bool(spec and spec.large_rf)


def cell_distance(a: CellGenotype, b: CellGenotype) -> float:
    """The cell-level distance ``1 - Jaccard(E_a, E_b)`` of two cells' ``(src, dst, op)`` edge sets.

    Args:
        a (CellGenotype): First cell.
        b (CellGenotype): Second cell.

    Returns:
        float: in ``[0, 1]``; 0 for identical edge sets, 1 for disjoint ones (two empty cells: 0).
    """
    ea, eb = set(a.edges), set(b.edges)
    union = ea | eb
    if not union:
        return 0.0
    return 1.0 - len(ea & eb) / len(union)


def distance_matrix(genotype: Genotype) -> list[list[float]]:
    """Pairwise :func:`cell_distance` of all cells, ``[L][L]``."""
    cells = genotype.cells
    return [[cell_distance(a, b) for b in cells] for a in cells]


def stages(genotype: Genotype) -> list[list[int]]:
    """Splits the cells into stages at the reduction cells.

    A reduction cell opens a new stage (it is the first cell at the new resolution), so with
    reductions at 4 and 8 in a 12-cell network the stages are ``[0-3], [4-7], [8-11]``.
    """
    out: list[list[int]] = []
    for k, c in enumerate(genotype.cells):
        if not out or (c.reduction and out[-1]):
            out.append([])
        out[-1].append(k)
    return out


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the Pareto-optimal points for (lower latency, higher mIoU), sorted by latency.

    Args:
        points (list): ``(latency, miou)`` pairs.

    Returns:
        list: indices of the points that no other point beats in both (ties kept once).
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def predicted_latency(table: Any, genotype: Genotype) -> tuple[float | None, list[float] | None]:
    """Asks a latency table (duck-typed) for the genotype's latency.

    ``table.predict(genotype)`` must return the total in ms (a number or a 0-d tensor). Per-cell values
    come from ``table.predict_cells(genotype)`` when the table has it, else by summing ``table[key]``
    over ``table.genotype_keys(genotype)`` (``(key, cell)`` pairs, cell ``-1`` for stem and head, as
    :class:`gasgnn.latency.LatencyTable` yields them).

    Args:
        table (object): Anything with ``predict(genotype)``; :obj:`None` gives ``(None, None)``.
        genotype (Genotype): The derived network.

    Returns:
        (float or None, list or None): total ms and per-cell ms.
    """
    if table is None:
        return None, None
    if not callable(getattr(table, "predict", None)):
        raise TypeError(f"latency table {type(table).__name__} has no predict(genotype) method")
    total = float(table.predict(genotype))
    per_cell = None
    if callable(getattr(table, "predict_cells", None)):
        per_cell = [float(v) for v in table.predict_cells(genotype)]
    elif callable(getattr(table, "genotype_keys", None)):
        per_cell = [0.0] * len(genotype.cells)
        for key, k in table.genotype_keys(genotype):
            if k >= 0:
                per_cell[k] += float(table[key])
    return total, per_cell


def genotype_params(genotype: Genotype, head: str = "aspp") -> int:
    """Parameters of the derived :class:`~gasgnn.models.net.GASNet` (stem, cells, head)."""

    return count_params(GASNet(genotype, head=head))


def analyze(genotype: Genotype, table: Any = None, params: bool = False) -> dict[str, Any]:
    """The supplement's statistics of a derived network.

    Args:
        genotype (Genotype): The derived network.
        table (object, optional): A latency table with ``predict(genotype)`` (ms), e.g.
            :class:`gasgnn.latency.LatencyTable`; duck-typed. (default: :obj:`None`)
        params (bool, optional): Also count the parameters of the derived network (builds it).
            (default: :obj:`False`)

    Returns:
        dict: JSON-serialisable, with keys ``num_cells``, ``num_edges``, ``reduction_cells``,
        ``op_counts`` (op -> kept edges), ``light_ops`` / ``light_ops_per_cell``, ``large_rf_ops`` /
        ``large_rf_per_cell`` / ``large_rf_last4`` / ``last_cells``, ``stages`` (per stage: ``cells``,
        ``op_counts``, ``light_ops``, ``large_rf_ops``), ``diversity_all`` (mean distance over all cell
        pairs), ``diversity_neighbour`` (mean over neighbours ``k, k+1``), ``neighbour_distances``,
        ``distance_matrix``, ``diversity_definition``, ``params`` and ``predicted_latency_ms`` /
        ``predicted_cell_latency_ms`` (:obj:`None` when not asked for).
    """
    if not isinstance(genotype, Genotype):
        raise TypeError(f"analyze: expected a Genotype, got {type(genotype).__name__}")
    cells = genotype.cells
    L = len(cells)
    light = [sum(_is_light(o) for _, _, o in c.edges) for c in cells]
    large = [sum(_is_large_rf(o) for _, _, o in c.edges) for c in cells]
    last = list(range(max(0, L - LAST_CELLS), L))
    dm = distance_matrix(genotype)
    pairs = list(itertools.combinations(range(L), 2))
    neighbour = [dm[k][k + 1] for k in range(L - 1)]
    stage_stats = []
    for ks in stages(genotype):
        ops = [o for k in ks for _, _, o in cells[k].edges]
        stage_stats.append({
            "cells": ks,
            "op_counts": dict(sorted(Counter(ops).items())),
            "light_ops": sum(light[k] for k in ks),
            "large_rf_ops": sum(large[k] for k in ks),
        })
    total_ms, cell_ms = predicted_latency(table, genotype)
    return {
        "num_cells": L,
        "num_edges": sum(len(c.edges) for c in cells),
        "reduction_cells": [k for k, c in enumerate(cells) if c.reduction],
        "op_counts": dict(sorted(Counter(genotype.ops()).items())),
        "light_ops": sum(light),
        "light_ops_per_cell": light,
        "large_rf_ops": sum(large),
        "large_rf_per_cell": large,
        "large_rf_last4": sum(large[k] for k in last),
        "last_cells": last,
        "stages": stage_stats,
        "diversity_all": sum(dm[i][j] for i, j in pairs) / len(pairs) if pairs else 0.0,
        "diversity_neighbour": sum(neighbour) / len(neighbour) if neighbour else 0.0,
        "neighbour_distances": neighbour,
        "distance_matrix": dm,
        "diversity_definition": DIVERSITY_DEFINITION,
        "params": genotype_params(genotype) if params else None,
        "predicted_latency_ms": total_ms,
        "predicted_cell_latency_ms": cell_ms,
    }


def format_analysis(stats: dict[str, Any]) -> str:
    """A human-readable summary of :func:`analyze` output."""
    light_names = ", ".join(sorted(n for n, s in OPS.items() if s.light))
    red = stats["reduction_cells"]
    last = stats["last_cells"]
    lines = [
        f"cells: {stats['num_cells']} (reduction cells: {', '.join(map(str, red)) or 'none'}), "
        f"{stats['num_edges']} kept edges",
        f"light-weight ops ({light_names}): {stats['light_ops']}; per cell: "
        + " ".join(map(str, stats["light_ops_per_cell"])),
        f"large-receptive-field ops (dilation >= 4): {stats['large_rf_ops']}; in the last {len(last)} cells "
        f"({last[0]}-{last[-1]}): {stats['large_rf_last4']}",
    ]
    for s, st in enumerate(stats["stages"]):
        hist = ", ".join(f"{o} {n}" for o, n in st["op_counts"].items())
        lines.append(f"stage {s} (cells {st['cells'][0]}-{st['cells'][-1]}): light {st['light_ops']}, "
                     f"large-RF {st['large_rf_ops']}; {hist}")
    lines.append(
        f"cell diversity (1 - Jaccard of (src, dst, op) edge sets): all pairs {stats['diversity_all']:.3f}, "
        f"neighbours {stats['diversity_neighbour']:.3f}"
    )
    lines.append("neighbour distances: " + " ".join(f"{d:.2f}" for d in stats["neighbour_distances"]))
    if stats.get("params") is not None:
        lines.append(f"parameters: {stats['params'] / 1e6:.3f} M")
    if stats.get("predicted_latency_ms") is not None:
        lines.append(f"predicted latency: {stats['predicted_latency_ms']:.3f} ms")
    return "\n".join(lines)


def run_row(run: Run, table: Any = None) -> dict[str, Any]:
    """One row of ``gasgnn compare``: the run's identity, :func:`analyze` statistics and results.

    The predicted latency is the table's when a table is given, else ``summary.predicted_latency_ms``.
    """
    try:
        stats = analyze(run.genotype, table)
    except GenotypeError as e:
        raise ValueError(f"{run.path}: {e}") from None
    s = run.summary
    pred = stats["predicted_latency_ms"]
    if pred is None and s.get("predicted_latency_ms") is not None:
        pred = float(s["predicted_latency_ms"])
    lw = s.get("latency_weight", run.config.get("latency_weight"))
    return {
        "name": run.name,
        "path": str(run.path),
        "guide": run.guide,
        "latency_weight": lw,
        "light_ops": stats["light_ops"],
        "large_rf_last4": stats["large_rf_last4"],
        "diversity_neighbour": stats["diversity_neighbour"],
        "diversity_all": stats["diversity_all"],
        "predicted_latency_ms": pred,
        "measured_latency_ms": s.get("measured_latency_ms"),
        "miou": s.get("miou"),
        "supernet_miou": s.get("supernet_miou"),
    }
