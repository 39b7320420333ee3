"""Run directories: the one writer and reader of the files a search leaves behind.

A run directory holds ``genotype.json`` (required), and optionally ``config.json``, ``summary.json``,
``metrics.csv`` and ``alpha_history.pt``. Searches, random search and the demo write ``summary.json``
through :func:`write_summary`; ``gasgnn viz`` and ``gasgnn compare`` read runs with :func:`load_run`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gasgnn.genotype import Genotype
from gasgnn.utils import read_json, write_json

__all__ = ["SUMMARY_FILE", "Run", "load_run", "read_metrics", "read_summary", "write_summary"]

#: The file name of a run's summary.
SUMMARY_FILE = "summary.json"


def read_summary(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``summary.json`` of ``run_dir`` as a dict (empty when the file is missing).

    Raises:
        ValueError: naming the file when it is not a JSON object.
    """
    p = Path(run_dir) / SUMMARY_FILE
    if not p.is_file():
        return {}
    obj = read_json(p, "summary file")
    if not isinstance(obj, dict):
        raise ValueError(f"{p}: expected a JSON object, got {type(obj).__name__}")
    return obj


def write_summary(run_dir: str | os.PathLike, summary: Mapping[str, Any], keep: Sequence[str] = ()) -> Path:
    """Writes ``summary.json`` of ``run_dir`` atomically.

    Args:
        run_dir (str or PathLike): The run directory.
        summary (Mapping): The values to write.
        keep (Sequence[str], optional): Keys whose non-null values in the existing file survive (numbers a
            later stage added, e.g. the trained ``miou``, when a search resumes). (default: :obj:`()`)

    Returns:
        Path: The file written.
    """
    out = dict(summary)
    if keep:
        prev = read_summary(run_dir)
        out.update({k: prev[k] for k in keep if prev.get(k) is not None})
    return write_json(Path(run_dir) / SUMMARY_FILE, out)


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


def read_metrics(path: str | os.PathLike) -> dict[str, list[float | None]]:
    """Reads ``metrics.csv`` into columns; empty cells become :obj:`None`.

    Raises:
        ValueError: naming the file, row and column of a value that is not a number.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames:
            raise ValueError(f"{path}: empty metrics file (expected a header line)")
        cols: dict[str, list[float | None]] = {c: [] for c in reader.fieldnames}
        for i, row in enumerate(reader, start=2):
            for c in reader.fieldnames:
                v = (row.get(c) or "").strip()
                try:
                    cols[c].append(float(v) if v else None)
                except ValueError:
                    raise ValueError(f"{path}: line {i}, column '{c}': not a number: {v!r}") from None
    return cols


def load_run(path: str | os.PathLike) -> Run:
    """Reads a run directory written by ``gasgnn search``, or a lone ``genotype.json``.

    A run directory holds ``genotype.json`` (required) and optionally ``config.json``, ``summary.json``,
    ``metrics.csv`` and ``alpha_history.pt``; a missing optional file adds a note instead of failing.

    Args:
        path (str or PathLike): The directory or the genotype file.

    Returns:
        Run: the parsed contents.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"run not found: {path} (expected a run directory or a genotype.json)")
    if path.is_file():
        return Run(path, Genotype.load(path), notes=[f"{path} is a genotype file: no metrics or alpha"])
    gpath = path / "genotype.json"
    if not gpath.is_file():
        raise FileNotFoundError(f"{path}: no genotype.json in the run directory")
    run = Run(path, Genotype.load(gpath))
    p = path / "config.json"
    if p.is_file():
        obj = read_json(p, "config file")
        if not isinstance(obj, dict):
            raise ValueError(f"{p}: expected a JSON object, got {type(obj).__name__}")
        run.config = obj
    else:
        run.notes.append("config.json missing")
    if (path / SUMMARY_FILE).is_file():
        run.summary = read_summary(path)
    else:
        run.notes.append(f"{SUMMARY_FILE} missing")
    p = path / "metrics.csv"
    if p.is_file():
        run.metrics = read_metrics(p)
    else:
        run.notes.append("metrics.csv missing: no training curves")
    p = path / "alpha_history.pt"
    if p.is_file():
        try:
            hist = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many types for corrupt files
            raise ValueError(f"{p}: cannot read: {e}") from None
        if not isinstance(hist, Tensor) or hist.dim() != 3:
            shape = tuple(hist.shape) if isinstance(hist, Tensor) else type(hist).__name__
            raise ValueError(f"{p}: expected a tensor [epochs, N, K], got {shape}")
        space = run.genotype.space
        if space is not None and tuple(hist.shape[1:]) != (space.num_arch_nodes, space.num_ops):
            raise ValueError(
                f"{p}: shape {tuple(hist.shape)} does not match the genotype's space "
                f"[epochs, {space.num_arch_nodes}, {space.num_ops}]"
            )
        run.alpha_history = hist.float()
    else:
        run.notes.append("alpha_history.pt missing: no alpha figure")
    return run
