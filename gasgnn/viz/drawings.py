"""Drawings of derived networks and of the search, in the GAS supplement's style (Figures 1-3).

Conventions: the network is drawn cell by cell (one row per stage when the stages are short), each
cell's DAG inside its panel: inputs :math:`c_{k-2}, c_{k-1}` (blue), intermediate nodes ``0 .. M-1``
(yellow) and the output :math:`c_k` (grey). Light-weight ops (``OPS[name].light``) are dashed arrows,
large-receptive-field ops (``OPS[name].large_rf``) green, other ops solid dark; every arrow carries a
short label (``sep3``, ``dil4``, ...) explained in the legend. Reduction cells have an orange frame.

Labels are placed by a small collision search: each edge is an arc (``arc3`` with a chosen curvature)
that avoids the other nodes, and its label sits at a fraction along the arc where it overlaps no node
and no other label (display coordinates, measured with the Agg renderer).

Everything uses :class:`matplotlib.figure.Figure` with an Agg canvas (no pyplot state, no graphviz).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch

from gasgnn.genotype import Genotype
from gasgnn.space import OPS
from gasgnn.viz.analysis import analyze, stages
from gasgnn.viz.style import (
    DRAWING_GID,
    NODE_COLORS,
    REDUCTION_COLOR,
    finish_figure,
    new_figure,
    op_style,
    short_label,
)

# ------------------------------------------------------------------------------------------------
# Cell drawing with collision-free labels


def _layout(num_nodes: int) -> dict[Any, tuple[float, float]]:
    """Node positions (data units): inputs left, intermediate nodes zigzag to the right, output last."""
    pos: dict[Any, tuple[float, float]] = {0: (0.0, 2.05), 1: (0.0, -0.05)}
    for j in range(num_nodes):
        pos[j + 2] = (1.5 + 1.2 * j, 1.65 if j % 2 == 0 else 0.35)
    pos["out"] = (1.5 + 1.2 * num_nodes + 0.15, 1.0)
    return pos


def _bezier(p0: np.ndarray, p2: np.ndarray, rad: float, t: np.ndarray) -> np.ndarray:
    """Points of matplotlib's ``arc3`` curve (control point at mid + rad * (dy, -dx)) at fractions ``t``."""
    d = p2 - p0
    c = (p0 + p2) / 2 + rad * np.array([d[1], -d[0]])
    t = t[:, None]
    return (1 - t) ** 2 * p0 + 2 * t * (1 - t) * c + t**2 * p2


def _rects_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])


_RADS = (0.0, 0.12, -0.12, 0.22, -0.22, 0.32, -0.32, 0.45, -0.45, 0.6, -0.6)
_TS = (0.5, 0.42, 0.58, 0.35, 0.65, 0.28, 0.72, 0.22, 0.78)


def _fit_limits(ax: Any, x0: float, x1: float, y0: float, y1: float) -> None:
    """Sets limits containing the box and matching the axes' shape, so one data unit is as wide as high."""
    fw, fh = ax.figure.get_size_inches()
    pos = ax.get_position()
    box = (pos.height * fh) / (pos.width * fw)
    w, h = x1 - x0, y1 - y0
    if h / w < box:
        extra = (box * w - h) / 2
        y0, y1 = y0 - extra, y1 + extra
    else:
        extra = (h / box - w) / 2
        x0, x1 = x0 - extra, x1 + extra
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_autoscale_on(False)


def _draw_cell_panel(ax: Any, cell: Any, title: str, fontsize: float, node_fs: float) -> None:
    """Draws one cell's DAG into ``ax`` with arcs avoiding nodes and labels avoiding each other."""
    fig = ax.figure
    pos = _layout(cell.num_nodes)
    r_data = 0.28
    xs = [p[0] for p in pos.values()]
    _fit_limits(ax, min(xs) - 0.38, max(xs) + 0.38, -0.45, 2.45)
    ax.set_xticks([])
    ax.set_yticks([])
    for sp in ax.spines.values():
        sp.set_color(REDUCTION_COLOR if cell.reduction else "#bbbbbb")
        sp.set_linewidth(2.2 if cell.reduction else 0.8)
    ax.set_title(title, fontsize=fontsize + 1, color=REDUCTION_COLOR if cell.reduction else "black", pad=3)

    names = {0: "$c_{k-2}$", 1: "$c_{k-1}$", "out": "$c_{k}$"}
    disp = {}
    for n, (x, y) in pos.items():
        kind = "input" if n in (0, 1) else ("output" if n == "out" else "inter")
        ax.add_artist(Circle((x, y), r_data, fc=NODE_COLORS[kind], ec="#333333", lw=1.0, zorder=3))
        ax.text(x, y, names.get(n, str(n - 2) if n != "out" else ""), ha="center", va="center",
                fontsize=node_fs, zorder=4, gid="node-label")
        disp[n] = ax.transData.transform((x, y))
    r_disp = ax.transData.transform((r_data, 0))[0] - ax.transData.transform((0, 0))[0]
    renderer = fig.canvas.get_renderer()
    axbox = ax.get_window_extent(renderer)
    frame = np.array([axbox.x0 + 2, axbox.y0 + 2, axbox.x1 - 2, axbox.y1 - 2])
    centres = np.array(list(disp.values()))

    # Edges: labelled kept ops, then unlabelled concatenation edges into the output node.
    edges = [(s, d, o) for s, d, o in cell.edges] + [(n, "out", None) for n in cell.concat]
    # Long edges first: they have the fewest node-free arcs and label slots.
    order = sorted(range(len(edges)), key=lambda i: -np.hypot(*(disp[edges[i][1]] - disp[edges[i][0]])))
    ts_curve = np.linspace(0.06, 0.94, 40)

    def arc_ok(i: int, rad: float) -> bool:
        s, d, _ = edges[i]
        pts = _bezier(disp[s], disp[d], rad, ts_curve)
        others = np.array([c for n, c in disp.items() if n not in (s, d)])
        dist = np.hypot(pts[:, None, 0] - others[None, :, 0], pts[:, None, 1] - others[None, :, 1])
        return bool(dist.min() >= r_disp + 4)

    rads = {}
    for i in order:
        rads[i] = [r for r in _RADS if arc_ok(i, r)] or [0.0]
    curves = {i: _bezier(disp[edges[i][0]], disp[edges[i][1]], rads[i][0], ts_curve) for i in order}

    pad = 0.15 * fontsize * fig.dpi / 72  # the label box's padding, in pixels
    placed: list[np.ndarray] = []
    done: set[int] = set()
    for i in order:
        s, d, op = edges[i]
        if op is None:
            continue
        # A multi-edge (two ops from one input) must not share its sibling's arc, or one would hide the other.
        taken = {rads[j][0] for j in done if edges[j][:2] == (s, d)}
        if taken:
            rads[i] = [r for r in rads[i] if r not in taken] or [r for r in _RADS if r not in taken]
        done.add(i)
        txt = ax.text(0, 0, short_label(op), fontsize=fontsize, ha="center", va="center", zorder=5,
                      color=op_style(op)["color"], gid="edge-label",
                      bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.92))
        ext = txt.get_window_extent(renderer)
        half = np.array([ext.width / 2 + pad + 1, ext.height / 2 + pad + 1])
        other = np.concatenate([cv for j, cv in curves.items() if j != i])
        best, best_cost = None, math.inf
        for ri, rad in enumerate(rads[i][:4]):
            for ti, t in enumerate(_TS):
                c = _bezier(disp[s], disp[d], rad, np.array([t]))[0]
                box = np.concatenate([c - half, c + half])
                hard = bool(box[0] < frame[0] or box[2] > frame[2] or box[1] < frame[1] or box[3] > frame[3])
                hard = hard or any(_rects_overlap(box, b) for b in placed)
                q = np.clip(centres, box[:2], box[2:])  # nearest box point to every node centre
                hard = hard or bool(np.hypot(*(q - centres).T).min() < r_disp + 1)
                inside = (other[:, 0] > box[0]) & (other[:, 0] < box[2]) & (other[:, 1] > box[1]) & (
                    other[:, 1] < box[3])
                cost = (1e6 if hard else 0) + 2.0 * ri + 0.6 * ti + 1.0 * int(inside.sum())
                if cost < best_cost:
                    best, best_cost = (rad, c, box), cost
        rad, c, box = best
        if best_cost >= 1e6:
            warnings.warn(f"{title}: no free place for the label of edge {s}->{d} ({op}); it overlaps",
                          stacklevel=3)
        rads[i] = [rad]
        curves[i] = _bezier(disp[s], disp[d], rad, ts_curve)
        placed.append(box)
        txt.set_position(ax.transData.inverted().transform(c))

    shrink = r_disp * 72 / fig.dpi  # node radius in points: arrows start and end on the circles
    for i, (s, d, op) in enumerate(edges):
        style = op_style(op) if op is not None else {"color": "#9a9a9a", "linestyle": "-", "lw": 0.9}
        ax.add_artist(FancyArrowPatch(
            pos[s], pos[d], connectionstyle=f"arc3,rad={rads[i][0]}", arrowstyle="-|>",
            mutation_scale=8 + fontsize / 2, shrinkA=shrink, shrinkB=shrink + 0.5, zorder=2 if op else 1,
            color=style["color"], linestyle=style["linestyle"], lw=style["lw"], joinstyle="miter",
        ))


def _legend(fig: Figure, ops: Sequence[str], y: float, fontsize: float, ncol: int = 5) -> None:
    handles, labels = [], []
    for o in ops:
        st = op_style(o)
        handles.append(Line2D([], [], color=st["color"], linestyle=st["linestyle"], lw=st["lw"] + 0.4))
        labels.append(f"{short_label(o)} = {o}")
    handles += [Line2D([], [], color=REDUCTION_COLOR, lw=2.2)]
    labels += ["reduction cell"]
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, y), ncol=min(ncol, len(labels)),
               fontsize=fontsize, frameon=False, handlelength=2.6, columnspacing=1.6)


def _op_order(genotype: Genotype) -> list[str]:
    present = {o for c in genotype.cells for _, _, o in c.edges}
    reg = [o for o in OPS if o in present]
    return reg + sorted(present - set(reg))


def _cell_title(k: int, cell: Any) -> str:
    return f"cell {k}" + (" \u2014 reduction" if cell.reduction else "") + f"  (C={cell.channels})"


def draw_network(
    genotype: Genotype,
    path: str | os.PathLike | None = None,
    title: str | None = None,
    ncols: int | None = None,
    panel_size: tuple[float, float] = (4.3, 2.15),
    fontsize: float = 8.5,
    dpi: float = 110,
) -> Figure:
    """Draws the whole derived network: every cell's DAG in network order.

    Args:
        genotype (Genotype): The derived network.
        path (str or PathLike, optional): Saves to PNG, SVG or PDF by the suffix. (default: :obj:`None`)
        title (str, optional): Figure title; :obj:`None` summarises the op statistics. (default: :obj:`None`)
        ncols (int, optional): Panels per row; :obj:`None` puts one stage per row when the stages have at
            most 6 cells, else 4 per row. (default: :obj:`None`)
        panel_size (tuple, optional): One cell panel's ``(width, height)`` in inches.
            (default: :obj:`(4.3, 2.15)`)
        fontsize (float, optional): Edge label size in points. (default: :obj:`8.5`)
        dpi (float, optional): Resolution. (default: :obj:`110`)

    Returns:
        Figure: the figure; one axes per cell with ``ax.get_gid() == 'cell-<k>'``.
    """

    L = len(genotype.cells)
    if ncols is None:
        st = stages(genotype)
        rows = st if max(len(s) for s in st) <= 6 else [list(range(i, min(i + 4, L))) for i in range(0, L, 4)]
    else:
        if ncols < 1:
            raise ValueError(f"draw_network: ncols must be >= 1, got {ncols}")
        rows = [list(range(i, min(i + ncols, L))) for i in range(0, L, ncols)]
    nc = max(len(r) for r in rows)
    pw, ph = panel_size
    M = max(c.num_nodes for c in genotype.cells)
    pw *= max(1.0, (2.4 + 1.2 * M) / (2.4 + 1.2 * 4))  # wider panels for more nodes, same scale
    top, gap_w, gap_h, side = 0.55, 0.12, 0.32, 0.15
    W = side * 2 + nc * pw + (nc - 1) * gap_w
    ops = _op_order(genotype)
    leg_cols = max(2, min(5, int(W // 2.4)))
    bottom = 0.3 + 0.2 * math.ceil((len(ops) + 1) / leg_cols)
    H = top + bottom + len(rows) * ph + (len(rows) - 1) * gap_h
    fig = new_figure(W, H)
    fig.set_dpi(dpi)
    fig.set_gid(DRAWING_GID)
    for r, row in enumerate(rows):
        for j, k in enumerate(row):
            x0 = side + j * (pw + gap_w)
            y0 = H - top - (r + 1) * ph - r * gap_h
            ax = fig.add_axes((x0 / W, y0 / H, pw / W, (ph - 0.25) / H), gid=f"cell-{k}")
            _draw_cell_panel(ax, genotype.cells[k], _cell_title(k, genotype.cells[k]), fontsize, fontsize)
    if title is None:
        s = analyze(genotype)
        title = (f"{L} cells: {s['light_ops']} light-weight ops (dashed), {s['large_rf_last4']} "
                 f"large-receptive-field ops (green) in the last {len(s['last_cells'])} cells")
    fig.suptitle(title, fontsize=fontsize + 3, y=1 - 0.18 / H)
    _legend(fig, ops, 0.08 / H, fontsize + 0.5, ncol=leg_cols)
    return finish_figure(fig, path, None)


def draw_cell(
    genotype: Genotype, k: int, path: str | os.PathLike | None = None, fontsize: float = 11, dpi: float = 110,
) -> Figure:
    """Draws cell ``k`` alone, larger.

    Args:
        genotype (Genotype): The derived network.
        k (int): Cell index (negative counts from the end).
        path (str or PathLike, optional): Saves to PNG, SVG or PDF. (default: :obj:`None`)
        fontsize (float, optional): Label size in points. (default: :obj:`11`)
        dpi (float, optional): Resolution. (default: :obj:`110`)

    Returns:
        Figure: with one axes (gid ``'cell-<k>'``).
    """
    L = len(genotype.cells)
    if not -L <= k < L:
        raise IndexError(f"draw_cell: cell {k} out of range for a {L}-cell genotype")
    k %= L
    cell = genotype.cells[k]
    fig = new_figure(8.0, 4.4)
    fig.set_dpi(dpi)
    fig.set_gid(DRAWING_GID)
    ax = fig.add_axes((0.02, 0.2, 0.96, 0.72), gid=f"cell-{k}")
    title = _cell_title(k, cell) + (": ops on $c_{k-2}, c_{k-1}$ have stride 2" if cell.reduction else "")
    _draw_cell_panel(ax, cell, title, fontsize, fontsize + 1)
    ops = [o for o in _op_order(genotype) if any(o == e[2] for e in cell.edges)]
    _legend(fig, ops, 0.0, fontsize - 1.5, ncol=3)
    return finish_figure(fig, path, None)


# ------------------------------------------------------------------------------------------------
# Search and comparison charts

__all__ = ["draw_cell", "draw_network"]
