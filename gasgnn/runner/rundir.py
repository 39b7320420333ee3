"""The run directory: the one owner of every run file's name, its atomic writer and its validating reader.

Searches, random search, training and the demo write their files only through :class:`RunDir`, and
``gasgnn viz``, ``compare`` and ``derive`` read them through it (:func:`gasgnn.runner.load_run`); no other
module spells a run file's name (``tests/test_layout.py`` checks it). Every writer is atomic (a killed
write leaves the old file or the new one), and every reader names the file and what is wrong with it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gasgnn.utils import atomic_torch_save, atomic_write_bytes, atomic_write_text, read_json, write_json

__all__ = ["RunDir"]


class RunDir:
    """One run directory and the files a run keeps in it.

    Args:
        path (str or PathLike): The directory (created by the first write).

    Example::

        run = RunDir("runs/gas")
        run.write_metrics(rows, fields=["epoch", "train_loss"])
        cols = run.read_metrics()            # {"epoch": [1.0, 2.0], "train_loss": [...]}
    """

    CONFIG = "config.json"  #: the run's settings (and the command's resolved options under ``args``)
    CONFIG_HISTORY = "config_history.jsonl"  #: changes accepted by ``--resume --allow-changes``
    METRICS = "metrics.csv"  #: one row per epoch
    CHECKPOINT = "checkpoint.pt"  #: a search's full state after every epoch
    LAST = "last.pt"  #: a training's full state after every epoch
    BEST = "best.pt"  #: a training's best weights (with the model spec)
    GENOTYPE = "genotype.json"  #: the genotype derived so far
    ALPHA_HISTORY = "alpha_history.pt"  #: alpha' per epoch, ``[epochs, N, K]``
    LATENCY_TABLE = "latency_table.json"  #: the latency table a search used
    SUMMARY = "summary.json"  #: the run's numbers (later stages add measured latency, mIoU)
    CURVES = "curves.png"  #: a training's loss and mIoU curves
    TRIALS = "trials.csv"  #: random search's trials
    FIGURES = "figures"  #: drawings (``gasgnn viz``)
    EVENTS = "events"  #: logger backends' files (TensorBoard event files, W&B, MLflow)
    PRETRAINED = "pretrained"  #: a trained network as a shareable artifact
    LOCK = ".gasgnn.lock"  #: the writer's lock (pid, host, start time, command)

    #: What a run writes; ``--overwrite`` removes exactly these (and the ``search``/``train`` stages of a demo).
    RUN_FILES = (CONFIG, CONFIG_HISTORY, METRICS, CHECKPOINT, LAST, BEST, GENOTYPE, ALPHA_HISTORY, LATENCY_TABLE,
                 SUMMARY, CURVES, TRIALS, FIGURES, EVENTS, PRETRAINED, "search", "train")

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def has(self, name: str) -> bool:
        """Whether the file ``name`` exists in the run directory."""
        return (self.path / name).exists()

    # --- writers ---------------------------------------------------------------------------------
    def write_config(self, config: Mapping[str, Any]) -> Path:
        """``config.json``."""
        return write_json(self.path / self.CONFIG, dict(config))

    def write_genotype(self, genotype: Any) -> Path:
        """``genotype.json`` (a :class:`~gasgnn.genotype.Genotype`, versioned and validated)."""
        path = self.path / self.GENOTYPE
        genotype.save(path)
        return path

    def write_table(self, table: Any) -> Path:
        """``latency_table.json`` (a :class:`~gasgnn.latency.LatencyTable`)."""
        path = self.path / self.LATENCY_TABLE
        table.save(path)
        return path

    def write_csv(self, name: str, rows: Sequence[Mapping[str, Any]], fields: Sequence[str],
                  float_format: str | None = None, newline: str = "\r\n") -> Path:
        """A CSV file of ``rows`` with the columns ``fields`` (other keys are left out).

        Args:
            float_format (str, optional): Format of float cells (e.g. ``".6g"``); :obj:`None` writes ``str``.
            newline (str, optional): Line terminator. (default: ``"\\r\\n"``, the csv module's)
        """
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore", lineterminator=newline)
        w.writeheader()
        for r in rows:
            if float_format is not None:
                r = {k: (format(v, float_format) if isinstance(v, float) else v) for k, v in r.items()}
            w.writerow(r)
        return atomic_write_text(self.path / name, buf.getvalue())

    def write_metrics(self, rows: Sequence[Mapping[str, Any]], fields: Sequence[str],
                      float_format: str | None = None, newline: str = "\r\n") -> Path:
        """``metrics.csv``: every epoch's row (see :meth:`write_csv`)."""
        return self.write_csv(self.METRICS, rows, fields, float_format, newline)

    def write_alpha_history(self, history: Sequence[Tensor]) -> Path:
        """``alpha_history.pt``: alpha' of every epoch stacked, ``[epochs, N, K]``."""
        return atomic_torch_save(torch.stack(list(history)), self.path / self.ALPHA_HISTORY)

    def write_bytes(self, name: str, data: bytes) -> Path:
        """Any other file of the run (e.g. ``curves.png``), atomically."""
        return atomic_write_bytes(self.path / name, data)

    def save_checkpoint(self, state: Mapping[str, Any], name: str = CHECKPOINT) -> Path:
        """A checkpoint (``checkpoint.pt``, ``last.pt`` or ``best.pt``), atomically."""
        return atomic_torch_save(dict(state), self.path / name)

    def append_history(self, record: Mapping[str, Any]) -> Path:
        """Appends one JSON line to ``config_history.jsonl`` (flushed to disk)."""
        p = self.path / self.CONFIG_HISTORY
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"time": time.strftime("%Y-%m-%d %H:%M:%S"), **record}, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return p

    def write_summary(self, summary: Mapping[str, Any], keep: Sequence[str] = ()) -> Path:
        """Writes ``summary.json``.

        Args:
            summary (Mapping): The values to write.
            keep (Sequence[str], optional): Keys whose non-null values in the existing file survive (numbers a
                later stage added, e.g. the trained ``miou``, when a search resumes), as long as the file
                describes the same genotype (``genotype_sha1``). An unreadable existing file is replaced.
                (default: :obj:`()`)
        """
        out = dict(summary)
        if keep:
            try:
                prev = self.read_summary()
            except ValueError:  # torn: this write replaces it
                prev = {}
            same = "genotype_sha1" not in out or prev.get("genotype_sha1") == out["genotype_sha1"]
            if same:
                out.update({k: prev[k] for k in keep if prev.get(k) is not None})
        return write_json(self.path / self.SUMMARY, out)

    # --- validating readers -------------------------------------------------------------------------
    def _read_object(self, name: str, what: str) -> dict[str, Any]:
        p = self.path / name
        obj = read_json(p, what)
        if not isinstance(obj, dict):
            raise ValueError(f"{p}: expected a JSON object, got {type(obj).__name__}")
        return obj

    def read_config(self) -> dict[str, Any]:
        """``config.json`` (empty when missing).

        Raises:
            ValueError: naming the file when it is not a JSON object.
        """
        return self._read_object(self.CONFIG, "config file") if self.has(self.CONFIG) else {}

    def read_summary(self) -> dict[str, Any]:
        """``summary.json`` (empty when missing).

        Raises:
            ValueError: naming the file when it is not a JSON object.
        """
        return self._read_object(self.SUMMARY, "summary file") if self.has(self.SUMMARY) else {}

    def read_genotype(self) -> Any:
        """``genotype.json`` as a :class:`~gasgnn.genotype.Genotype`.

        Raises:
            FileNotFoundError: naming the run directory when there is none.
        """
        from gasgnn.genotype import Genotype

        p = self.path / self.GENOTYPE
        if not p.is_file():
            raise FileNotFoundError(f"{self.path}: no {self.GENOTYPE} in the run directory")
        return Genotype.load(p)

    def read_metrics(self, name: str = METRICS) -> dict[str, list[float | None]]:
        """A CSV file of numbers (``metrics.csv``) as columns; empty cells become :obj:`None`.

        Raises:
            ValueError: naming the file, row and column of a value that is not a number.
        """
        path = self.path / name
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

    def read_alpha_history(self, shape: tuple[int, int] | None = None) -> Tensor:
        """``alpha_history.pt`` as float ``[epochs, N, K]``.

        Args:
            shape (tuple, optional): The expected ``(N, K)`` (the space's ``num_arch_nodes, num_ops``).

        Raises:
            ValueError: naming the file when it cannot be read or has another shape.
        """
        p = self.path / self.ALPHA_HISTORY
        try:
            hist = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many types for corrupt files
            raise ValueError(f"{p}: cannot read: {e}") from None
        if not isinstance(hist, Tensor) or hist.dim() != 3:
            got = tuple(hist.shape) if isinstance(hist, Tensor) else type(hist).__name__
            raise ValueError(f"{p}: expected a tensor [epochs, N, K], got {got}")
        if shape is not None and tuple(hist.shape[1:]) != tuple(shape):
            raise ValueError(f"{p}: shape {tuple(hist.shape)} does not match the genotype's space "
                             f"[epochs, {shape[0]}, {shape[1]}]")
        return hist.float()

    def load_checkpoint(self, name: str = CHECKPOINT, map_location: Any = "cpu",
                        check: Callable[[Any, Path], None] | None = None) -> dict[str, Any]:
        """A checkpoint written by :meth:`save_checkpoint`.

        Args:
            name (str, optional): The file. (default: ``checkpoint.pt``)
            map_location (optional): As for :func:`torch.load`. (default: ``"cpu"``)
            check (callable, optional): ``check(state, path)`` raising ``ValueError`` when the content is not
                the kind of checkpoint expected.

        Raises:
            FileNotFoundError: naming the file when it is missing.
            ValueError: naming the file when it cannot be read (torn, foreign).
        """
        path = self.path / name
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint {path}")
        try:
            st = torch.load(path, map_location=map_location, weights_only=False)
        except Exception as e:  # a torn or foreign file: say which
            raise ValueError(f"checkpoint {path} cannot be read: {e}") from None
        if check is not None:
            check(st, path)
        if not isinstance(st, dict):
            raise ValueError(f"checkpoint {path}: expected a dict of states, got {type(st).__name__}")
        return st

    # --- what the directory holds -------------------------------------------------------------------
    def files(self) -> list[str]:
        """Names in the directory that belong to a run (hidden files such as the lock and temporaries excluded)."""
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if not p.name.startswith("."))

    def clean_temp_files(self) -> list[Path]:
        """Removes ``.*.tmp`` files that killed atomic writes left behind (call only while holding the lock)."""
        gone = []
        for p in self.path.rglob(".*.tmp") if self.path.is_dir() else ():
            if p.is_file():
                p.unlink()
                gone.append(p)
        return gone
