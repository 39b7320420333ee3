"""Charts of the search and of runs: alpha heat maps, Pareto fronts, per-cell latency, training
curves, run comparisons, and :func:`draw_run` that makes all figures of a run directory.

Network and cell drawings live in :mod:`gasgnn.viz.drawings`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from gasgnn.genotype import Genotype, op_entropy
from gasgnn.runner import Run, load_run, run_table
from gasgnn.viz.analysis import analyze, pareto_front
from gasgnn.viz.drawings import draw_cell, draw_network
from gasgnn.viz.style import REDUCTION_COLOR, finish_figure, new_figure, save_figure, short_label


def _entropy(alpha: Tensor) -> Tensor:
    """Per-node entropy normalised to [0, 1] (1 = uniform over the K ops)."""
    return op_entropy(alpha) / math.log(alpha.size(-1))


def draw_alpha_history(alpha_history: Tensor, space: Any, path: str | os.PathLike | None = None,
                       ncols: int = 4, dpi: float = 110) -> Figure:
    """Heat maps of ``softmax(alpha)`` per cell at the last epoch, plus each cell's entropy over epochs.

    Args:
        alpha_history (Tensor): alpha (or alpha' after guidance) per epoch, aligned with the ArchGraph.
        space (SearchSpace): The search space (cells, edges, op names).
        path (str or PathLike, optional): Saves the figure. (default: :obj:`None`)
        ncols (int, optional): Heat maps per row. (default: :obj:`4`)
        dpi (float, optional): Resolution. (default: :obj:`110`)

    Shapes:
        - **alpha_history:** ``[epochs, num_cells * E, K]``

    Returns:
        Figure: the figure.
    """
    h = torch.as_tensor(alpha_history).detach().float().cpu()
    if h.dim() != 3 or tuple(h.shape[1:]) != (space.num_arch_nodes, space.num_ops):
        raise ValueError(f"draw_alpha_history: alpha_history has shape {tuple(h.shape)}, expected "
                         f"[epochs, {space.num_arch_nodes}, {space.num_ops}]")
    L, E, K = space.num_cells, space.edges_per_cell, space.num_ops
    nrows = math.ceil(L / ncols)
    # Layout in inches: heat maps in a grid, a colour bar on the right, the entropy panel at the bottom.
    leg_cols = math.ceil(L / 12)
    left, right, top, pw, gap_w = 0.7, 0.4 + 0.75 * leg_cols, 0.5, 2.3, 0.2
    hh, row_h, ent_h = 0.16 * E, 0.16 * E + 0.85, 2.0
    W = left + ncols * pw + (ncols - 1) * gap_w + right
    H = top + nrows * row_h + ent_h + 0.8
    fig = new_figure(W, H)
    fig.set_dpi(dpi)
    last = torch.softmax(h[-1], dim=-1)
    edge_names = [f"{s}\u2192{d}" for s, d in space.cell_edges()]
    im = None
    for k in range(L):
        r, c = divmod(k, ncols)
        y0 = H - top - r * row_h - 0.3 - hh
        ax = fig.add_axes(((left + c * (pw + gap_w)) / W, y0 / H, pw / W, hh / H))
        im = ax.imshow(last[space.cell_slice(k)].numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"cell {k}" + (" (reduction)" if space.is_reduction(k) else ""), fontsize=9, pad=3,
                     color=REDUCTION_COLOR if space.is_reduction(k) else "black")
        ax.set_xticks(range(K), [short_label(o) for o in space.ops], fontsize=7.5, rotation=50)
        ax.set_yticks(range(E), edge_names if c == 0 else [""] * E, fontsize=7.5)
    cax = fig.add_axes(((W - right + 0.15) / W, (H - top - row_h * min(nrows, 2) + 0.55) / H, 0.15 / W,
                        (row_h * min(nrows, 2) - 0.85) / H))
    fig.colorbar(im, cax=cax).set_label(f"softmax(alpha) at epoch {h.size(0) - 1}", fontsize=8.5)
    ax = fig.add_axes((left / W, 0.55 / H, (W - left - right) / W, ent_h / H))
    ent = _entropy(h).view(h.size(0), L, E).mean(-1)  # [epochs, L]
    colors = colormaps["plasma"](np.linspace(0, 0.9, L))
    for k in range(L):
        ax.plot(range(h.size(0)), ent[:, k].numpy(), color=colors[k], lw=1.3, label=f"cell {k}",
                marker="o" if h.size(0) < 3 else None)
    ax.set_xlabel("epoch", fontsize=9)
    ax.set_ylabel("entropy / log K", fontsize=9)
    ax.set_ylim(0, 1.05)
    ax.legend(ncol=leg_cols, fontsize=7.5, loc="upper left", bbox_to_anchor=(1.005, 1.02),
              frameon=False, handlelength=1.5)
    ax.grid(alpha=0.3)
    fig.suptitle("Architecture weights per cell (rows: edges src\u2192dst, columns: ops)", fontsize=11,
                 y=1 - 0.12 / H)
    return finish_figure(fig, path, None)


def draw_pareto(points: Sequence[Mapping[str, Any]], path: str | os.PathLike | None = None,
                ax: Any = None, dpi: float = 100) -> Figure:
    """Latency versus mIoU of runs, with the Pareto front (lower latency, higher mIoU).

    Args:
        points (list): Dicts with ``name``, ``latency_ms``, ``miou`` and optional ``group`` (colour);
            points with a missing latency or mIoU are left out.
        path (str or PathLike, optional): Saves the figure. (default: :obj:`None`)
        ax (Axes, optional): Draws into this axes instead of a new figure. (default: :obj:`None`)
        dpi (float, optional): Resolution. (default: :obj:`100`)

    Returns:
        Figure: the figure.
    """

    for i, p in enumerate(points):
        if "name" not in p:
            raise ValueError(f"draw_pareto: points[{i}] has no 'name'")
    pts = [p for p in points if p.get("latency_ms") is not None and p.get("miou") is not None]
    if ax is None:
        fig = new_figure(6.0, 4.2)
        fig.set_dpi(dpi)
        ax = fig.add_subplot(1, 1, 1)
    fig = ax.figure
    groups = list(dict.fromkeys(str(p.get("group", "")) for p in pts))
    cmap = colormaps["tab10"]
    for gi, g in enumerate(groups):
        sel = [p for p in pts if str(p.get("group", "")) == g]
        ax.scatter([p["latency_ms"] for p in sel], [p["miou"] for p in sel], s=36, color=cmap(gi % 10),
                   label=g or None, zorder=3, edgecolor="black", linewidth=0.5)
    for i, p in enumerate(pts):
        ax.annotate(str(p["name"]), (p["latency_ms"], p["miou"]), xytext=(5, 5 - 12 * (i % 2)),
                    textcoords="offset points", fontsize=7.5)
    front = pareto_front([(float(p["latency_ms"]), float(p["miou"])) for p in pts])
    if front:
        fx = [pts[i]["latency_ms"] for i in front]
        fy = [pts[i]["miou"] for i in front]
        ax.step(fx, fy, where="post", color="#888888", lw=1.0, ls="--", zorder=2, label="Pareto front")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("mIoU")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # no legend for an empty chart (matplotlib would warn)
        ax.legend(fontsize=7.5, frameon=False)
    if not pts:
        ax.text(0.5, 0.5, "no run has both a latency and an mIoU", ha="center", transform=ax.transAxes)
    ax.set_title("latency vs mIoU", fontsize=10)
    return finish_figure(fig, path, None)


def draw_cell_latency(per_cell_ms: Sequence[float] | Tensor, path: str | os.PathLike | None = None,
                      reduction_cells: Sequence[int] = (), dpi: float = 100) -> Figure:
    """Bars of the latency of every cell.

    Args:
        per_cell_ms (list or Tensor): Latency of each cell in ms.
        path (str or PathLike, optional): Saves the figure. (default: :obj:`None`)
        reduction_cells (list, optional): Cells drawn in the reduction colour. (default: :obj:`()`)
        dpi (float, optional): Resolution. (default: :obj:`100`)

    Returns:
        Figure: the figure.
    """
    v = [float(x) for x in (per_cell_ms.tolist() if isinstance(per_cell_ms, Tensor) else per_cell_ms)]
    if not v:
        raise ValueError("draw_cell_latency: per_cell_ms is empty")
    fig = new_figure(max(4.0, 0.45 * len(v) + 1.5), 3.2)
    fig.set_dpi(dpi)
    ax = fig.add_subplot(1, 1, 1)
    colors = [REDUCTION_COLOR if k in set(reduction_cells) else "#4c72b0" for k in range(len(v))]
    ax.bar(range(len(v)), v, color=colors)
    ax.set_xticks(range(len(v)))
    ax.set_xlabel("cell")
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"per-cell latency (cells: {sum(v):.2f} ms in total)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return finish_figure(fig, path, None)


def draw_metrics(metrics: Mapping[str, Sequence[float | None]], path: str | os.PathLike | None = None,
                 dpi: float = 100) -> Figure:
    """Training curves of a search from ``metrics.csv`` columns (loss, mIoU, expected latency, entropy,
    the guide's diagnostics: attention entropy and update ratio in one panel, distinct arg-max sources
    per cell in the next).

    Args:
        metrics (dict): Column name -> values per epoch; needs ``epoch``; others are drawn when present.
        path (str or PathLike, optional): Saves the figure. (default: :obj:`None`)
        dpi (float, optional): Resolution. (default: :obj:`100`)

    Returns:
        Figure: the figure.
    """
    if "epoch" not in metrics:
        raise ValueError(f"draw_metrics: no 'epoch' column (columns: {sorted(metrics)})")
    panels = [(("train_loss", "val_loss"), "loss"), (("val_miou",), "val mIoU"),
              (("expected_latency_ms",), "expected latency (ms)"), (("alpha_entropy",), "alpha entropy"),
              (("guide_attention_entropy", "guide_update_ratio"), "guide diagnostics"),
              (("guide_distinct_sources",), "guide: distinct sources per cell")]

    def drawn(c: str) -> bool:  # a column of NaNs (e.g. the attention diagnostics of guide 'none') is not drawn
        return c in metrics and any(v is not None and math.isfinite(v) for v in metrics[c])

    panels = [(tuple(c for c in cols if drawn(c)), lab) for cols, lab in panels]
    panels = [(cols, lab) for cols, lab in panels if cols]
    if not panels:
        raise ValueError(f"draw_metrics: none of the known columns has a value (columns: {sorted(metrics)})")
    fig = new_figure(3.2 * len(panels), 3.0)
    fig.set_dpi(dpi)
    ep = metrics["epoch"]
    for i, (cols, lab) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for c in cols:
            if c in metrics:
                xy = [(x, y) for x, y in zip(ep, metrics[c]) if x is not None and y is not None]
                ax.plot([a for a, _ in xy], [b for _, b in xy], marker="o", ms=3, label=c)
        ax.set_xlabel("epoch")
        ax.set_title(lab, fontsize=10)
        ax.grid(alpha=0.3)
        if len(cols) > 1 and ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7.5, frameon=False)
    fig.tight_layout()
    return finish_figure(fig, path, None)


def draw_comparison(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike | None = None,
                    dpi: float = 100) -> Figure:
    """Side-by-side runs: the latency/mIoU Pareto scatter and bars of the supplement's statistics.

    Args:
        rows (list): Rows of :func:`gasgnn.viz.analysis.run_row` (``name``, ``guide``, ``light_ops``,
            ``large_rf_last4``, ``diversity_neighbour``, ``predicted_latency_ms`` or
            ``measured_latency_ms``, ``miou``).
        path (str or PathLike, optional): Saves the figure. (default: :obj:`None`)
        dpi (float, optional): Resolution. (default: :obj:`100`)

    Returns:
        Figure: the figure.
    """
    if not rows:
        raise ValueError("draw_comparison: no runs")
    fig = new_figure(max(12.0, 7.5 + 1.2 * len(rows)), 4.0)
    fig.set_dpi(dpi)
    gs = fig.add_gridspec(1, 4, width_ratios=[1.5, 1, 1, 1], wspace=0.3, left=0.05, right=0.99,
                          bottom=0.2, top=0.9)
    pts = [{"name": r["name"], "group": r.get("guide") or "", "miou": r.get("miou"),
            "latency_ms": r.get("measured_latency_ms") or r.get("predicted_latency_ms")} for r in rows]
    ax = fig.add_subplot(gs[0])
    draw_pareto(pts, ax=ax)
    ax.set_xlabel("latency (ms; measured, else predicted)")
    # The scatter's colours: groups in order of first plotted point, then the rest.
    shown = [p["group"] for p in pts if p["latency_ms"] is not None and p["miou"] is not None]
    groups = list(dict.fromkeys(shown + [p["group"] for p in pts]))
    colors = [colormaps["tab10"](groups.index(p["group"]) % 10) for p in pts]
    names = [str(r["name"]) for r in rows]
    for i, (key, lab) in enumerate([("light_ops", "light-weight ops"),
                                    ("large_rf_last4", "large-RF ops in the last 4 cells"),
                                    ("diversity_neighbour", "neighbour-cell diversity")]):
        ax = fig.add_subplot(gs[i + 1])
        vals = [float(r[key]) for r in rows]
        bars = ax.bar(range(len(rows)), vals, color=colors, edgecolor="black", linewidth=0.5)
        ax.bar_label(bars, fmt="%.2f" if key.startswith("diversity") else "%d", fontsize=8.5)
        ax.set_xticks(range(len(rows)), names, rotation=25, ha="right", fontsize=9)
        ax.set_title(lab, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.margins(y=0.12)
    return finish_figure(fig, path, None)


def draw_run(
    run: Any, out: str | os.PathLike | None = None, fmt: str = "png", cells: bool = False, table: Any = None,
    dpi: float | None = None,
) -> tuple[list[Path], list[str], dict[str, Any]]:
    """Draws every figure a run directory (or a genotype file) allows; called at the end of a search.

    Writes ``network``, ``cell_<k>`` (with ``cells``), ``alpha_history``, ``cell_latency`` and ``metrics``
    into ``out``; a figure whose input is missing is skipped with a note.

    Args:
        run (str, PathLike or Run): The run directory, a genotype file, or a loaded
            :class:`~gasgnn.runner.Run`.
        out (str or PathLike, optional): Figure folder; :obj:`None` is ``RUN_DIR/figures`` (or
            ``figures/`` beside a genotype file). (default: :obj:`None`)
        fmt (str, optional): ``'png'``, ``'svg'`` or ``'pdf'``. (default: :obj:`"png"`)
        cells (bool, optional): Also draw every cell alone. (default: :obj:`False`)
        table (object, optional): Latency table; :obj:`None` uses the run's own
            (:func:`~gasgnn.runner.run_table`). (default: :obj:`None`)
        dpi (float, optional): PNG resolution; :obj:`None` keeps each figure's. (default: :obj:`None`)

    Returns:
        (list, list, dict): written paths, notes (missing files, skipped figures), and the
        :func:`~gasgnn.viz.analysis.analyze` statistics.
    """
    from gasgnn.space import SearchSpace, SpaceError

    r = run if isinstance(run, Run) else load_run(run)
    notes = list(r.notes)
    if table is None:
        table = run_table(r, notes)
    try:
        stats = analyze(r.genotype, table)
    except (ValueError, KeyError) as e:  # e.g. a table without entries for this network
        notes.append(f"predicted latency skipped: {e}")
        stats = analyze(r.genotype)
    out = Path(out) if out is not None else (r.path if r.is_dir else r.path.parent) / "figures"
    written: list[Path] = []

    def save(fig: Figure, name: str) -> None:
        written.append(save_figure(fig, out / f"{name}.{fmt}", dpi=dpi))

    g = r.genotype
    save(draw_network(g), "network")
    if cells:
        for k in range(len(g.cells)):
            save(draw_cell(g, k), f"cell_{k:02d}")
    if r.alpha_history is not None:
        space = g.space
        if space is None and isinstance(r.config.get("space"), dict):
            try:
                space = SearchSpace.from_dict(r.config["space"])
            except SpaceError as e:
                notes.append(f"alpha history skipped: config.json space: {e}")
        if space is None:
            notes.append("alpha history skipped: no search space in genotype.json or config.json")
        else:
            try:
                save(draw_alpha_history(r.alpha_history, space), "alpha_history")
            except ValueError as e:
                notes.append(f"alpha history skipped: {e}")
    if stats.get("predicted_cell_latency_ms"):
        per_cell = stats["predicted_cell_latency_ms"]
        save(draw_cell_latency(per_cell, reduction_cells=stats["reduction_cells"]), "cell_latency")
    else:
        notes.append("per-cell latency skipped: no latency table")
    if r.metrics is not None:
        try:
            save(draw_metrics(r.metrics), "metrics")
        except ValueError as e:
            notes.append(f"training curves skipped: metrics.csv: {e}")
    return written, notes, stats


def figure_array(fig: Figure) -> np.ndarray:
    """The RGB pixels ``[H, W, 3]`` (uint8) of a figure (for loggers that take images, e.g. TensorBoard)."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def search_epoch_images(alpha: Tensor, genotype: Genotype, space: Any) -> dict[str, np.ndarray]:
    """A search epoch's images for logger backends: ``alpha`` (the heat maps of softmax(alpha') per cell) and
    ``cells`` (the derived network's cell drawings), small enough to log every epoch.

    Args:
        alpha (Tensor): alpha' of the epoch ``[num_cells * E, K]``.
        genotype (Genotype): The genotype derived at the epoch.
        space (SearchSpace): The search space.
    """
    return {"alpha": figure_array(draw_alpha_history(alpha.detach().cpu()[None], space, dpi=50)),
            "cells": figure_array(draw_network(genotype, dpi=50))}
