"""Reading a finished (or running) run directory back: :func:`load_run` and the run's latency table.

``gasgnn viz``, ``compare`` and ``derive`` and the experiment scripts read runs with these, through the
validating readers of :class:`~gasgnn.runner.rundir.RunDir`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from gasgnn.genotype import Genotype
from gasgnn.latency import LatencyTable
from gasgnn.runner.rundir import RunDir

__all__ = ["Run", "load_run", "load_table", "run_table"]


@dataclass
class Run:
    """What a run directory (or a lone genotype file) holds; missing optional parts are :obj:`None`.

    Args:
        path (Path): The run directory, or the genotype file.
        genotype (Genotype): ``genotype.json``.
        config (dict): ``config.json`` (empty when missing).
        summary (dict): ``summary.json`` (empty when missing).
        metrics (dict, optional): ``metrics.csv`` as columns (name -> list of float or None).
        alpha_history (Tensor, optional): ``alpha_history.pt``, ``[epochs, N, K]``.
        notes (list): Messages about missing or unusable optional files.
    """

    path: Path
    genotype: Genotype
    config: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    metrics: dict[str, list[float | None]] | None = None
    alpha_history: Tensor | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def is_dir(self) -> bool:
        """Whether this is a run directory (not a lone genotype file)."""
        return self.path.is_dir()

    @property
    def name(self) -> str:
        """``summary.name``, else the directory (or file stem) name."""
        return str(self.summary.get("name") or (self.path.name if self.is_dir else self.path.stem))

    @property
    def guide(self) -> str | None:
        """The guidance module (``summary.guide`` or ``config.guide``)."""
        g = self.summary.get("guide", self.config.get("guide"))
        return None if g is None else str(g)


def load_run(path: str | os.PathLike) -> Run:
    """Reads a run directory written by ``gasgnn search``, or a lone genotype file.

    A run directory holds ``genotype.json`` (required) and optionally ``config.json``, ``summary.json``,
    ``metrics.csv`` and ``alpha_history.pt``; a missing optional file adds a note instead of failing, an
    unreadable one is an error naming it.

    Args:
        path (str or PathLike): The directory or the genotype file.

    Returns:
        Run: the parsed contents.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"run not found: {path} (expected a run directory or a genotype file)")
    if path.is_file():
        return Run(path, Genotype.load(path), notes=[f"{path} is a genotype file: no metrics or alpha"])
    rd = RunDir(path)
    run = Run(path, rd.read_genotype(), config=rd.read_config(), summary=rd.read_summary())
    run.notes += [f"{name} missing" for name in (RunDir.CONFIG, RunDir.SUMMARY) if not rd.has(name)]
    if rd.has(RunDir.METRICS):
        run.metrics = rd.read_metrics()
    else:
        run.notes.append(f"{RunDir.METRICS} missing: no training curves")
    if rd.has(RunDir.ALPHA_HISTORY):
        space = run.genotype.space
        run.alpha_history = rd.read_alpha_history(None if space is None else (space.num_arch_nodes, space.num_ops))
    else:
        run.notes.append(f"{RunDir.ALPHA_HISTORY} missing: no alpha figure")
    return run


def load_table(path: str | os.PathLike) -> LatencyTable:
    """Loads a latency table file (:meth:`gasgnn.latency.LatencyTable.load`).

    Raises:
        FileNotFoundError: naming the file when it is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"latency table not found: {path}")
    return LatencyTable.load(path)


def run_table(run: Run, notes: list[str] | None = None) -> Any:
    """The run's latency table: ``config.json``'s ``latency_table`` path (relative to the run directory
    or the working directory), else the run's own ``latency_table.json``; :obj:`None` (with a note) when
    there is none or it cannot be read."""
    notes = notes if notes is not None else run.notes
    if not run.is_dir:
        return None
    cands = []
    ref = run.config.get("latency_table")
    if isinstance(ref, str):
        cands += [run.path / ref, Path(ref)]
    cands.append(RunDir(run.path) / RunDir.LATENCY_TABLE)
    for p in cands:
        if p.is_file():
            try:
                return load_table(p)
            except (ValueError, KeyError, ImportError) as e:
                notes.append(f"latency table {p} skipped: {e}")
                return None
    notes.append(f"no latency table in the run (config.json latency_table or {RunDir.LATENCY_TABLE})")
    return None
