"""Run directories: the one writer and reader of the files a search leaves behind.

A run directory holds ``genotype.json`` (required), and optionally ``config.json``, ``summary.json``,
``metrics.csv`` and ``alpha_history.pt``. Searches, random search and the demo write ``summary.json``
through :func:`write_summary`; ``gasgnn viz`` and ``gasgnn compare`` read runs with :func:`load_run`.

Before a command writes into a run directory it calls :func:`claim_run_dir`: it refuses a directory
holding another run unless the user resumes or overwrites it, takes a lock (pid, host, start time) so two
writers cannot mix their files, removes stale temporary files of killed writes, and on ``--overwrite``
removes the earlier run's files (so no ``summary.json`` outlives the run it described).
"""

from __future__ import annotations

import csv
import json
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gasgnn.genotype import Genotype
from gasgnn.utils import read_json, write_json

__all__ = [
    "LOCK_FILE", "RUN_FILES", "SUMMARY_FILE", "Run", "RunDirError", "RunLock", "check_out_path", "claim_run_dir",
    "clean_temp_files", "load_run", "read_metrics", "read_summary", "run_files", "write_summary",
]

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
        # Numbers a later stage added describe one genotype: keep them only while it is still the one.
        same = "genotype_sha1" not in out or prev.get("genotype_sha1") == out["genotype_sha1"]
        if same:
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


# ------------------------------------------------------------------------------------------------
# Claiming a run directory: refusals, the lock, stale temporary files.

#: The lock file of a run directory (JSON: pid, host, started, command).
LOCK_FILE = ".gasgnn.lock"
#: Files a run writes (search, random search, training, demo); ``--overwrite`` removes exactly these.
RUN_FILES = (
    "config.json", "config_history.jsonl", "metrics.csv", "checkpoint.pt", "genotype.json", "alpha_history.pt",
    "latency_table.json", SUMMARY_FILE, "last.pt", "best.pt", "curves.png", "trials.csv", "figures", "search",
    "train",
)


class RunDirError(ValueError):
    """A run directory cannot be used as asked (another run, a live lock, a file in the way)."""


def check_out_path(path: str | os.PathLike, flag: str = "--out", is_dir: bool = True) -> Path:
    """Checks that ``path`` can be written before any work starts.

    Args:
        path (str or PathLike): The output directory (or file, with ``is_dir=False``).
        flag (str, optional): The option named in errors. (default: ``"--out"``)
        is_dir (bool, optional): Whether ``path`` is a directory. (default: :obj:`True`)

    Raises:
        RunDirError: naming ``flag`` when ``path`` (or a parent) is a file, or is not writable.
    """
    path = Path(path)
    if is_dir and path.exists() and not path.is_dir():
        raise RunDirError(f"{flag} {path}: is a file, not a directory")
    if not is_dir and path.is_dir():
        raise RunDirError(f"{flag} {path}: is a directory, not a file")
    parent = path if is_dir else path.parent
    probe = parent
    while not probe.exists():  # the first existing ancestor decides
        probe = probe.parent
    if not probe.is_dir():
        raise RunDirError(f"{flag} {path}: {probe} is a file, so nothing can be created under it")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise RunDirError(f"{flag} {path}: {probe} is not writable")
    return path


def run_files(run_dir: str | os.PathLike) -> list[str]:
    """Names in ``run_dir`` that belong to a run (hidden files such as the lock and temporaries excluded)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    return sorted(p.name for p in run_dir.iterdir() if not p.name.startswith("."))


def clean_temp_files(run_dir: str | os.PathLike) -> list[Path]:
    """Removes ``.*.tmp`` files that killed atomic writes left behind (call only while holding the lock)."""
    run_dir = Path(run_dir)
    gone = []
    for p in run_dir.rglob(".*.tmp") if run_dir.is_dir() else ():
        if p.is_file():
            p.unlink()
            gone.append(p)
    return gone


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class RunLock:
    """An exclusive lock on a run directory: ``run_dir/.gasgnn.lock`` holding pid, host and start time.

    A lock whose process is gone (same host) is stale: it is named and replaced. A lock from another host
    cannot be checked and is refused with its path, so the user can remove it when sure.

    Args:
        run_dir (str or PathLike): The run directory (created).
        command (str, optional): Recorded in the lock (for the message another writer sees).
    """

    def __init__(self, run_dir: str | os.PathLike, command: str = "gasgnn") -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self.command = command
        self.held = False
        self.notes: list[str] = []

    def _info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": self.command}

    def acquire(self) -> RunLock:
        """Takes the lock; raises :class:`RunDirError` naming the holder when another writer has it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    other = json.loads(self.path.read_text(encoding="utf-8") or "{}")
                except (OSError, ValueError):
                    other = {}
                who = (f"pid {other.get('pid', '?')} on {other.get('host', '?')}, started "
                       f"{other.get('started', '?')} ({other.get('command', '?')})")
                if other.get("host") == socket.gethostname() and isinstance(other.get("pid"), int) \
                        and not _pid_alive(other["pid"]):
                    self.notes.append(f"removed a stale lock {self.path} of {who}: that process is gone")
                    self.path.unlink(missing_ok=True)
                    continue
                if not other:  # a torn lock file (killed between create and write): stale
                    self.notes.append(f"removed an unreadable lock {self.path}")
                    self.path.unlink(missing_ok=True)
                    continue
                raise RunDirError(
                    f"{self.path.parent} is in use by {who}; lock file {self.path}. Wait for that run, choose "
                    f"another --out, or delete the lock file if that process is not running."
                ) from None
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self._info(), f)
            self.held = True
            return self
        raise RunDirError(f"cannot take the lock {self.path}")

    def release(self) -> None:
        """Removes the lock if this process holds it."""
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> RunLock:
        return self.acquire() if not self.held else self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def claim_run_dir(
    run_dir: str | os.PathLike, resume: bool = False, overwrite: bool = False, command: str = "gasgnn",
    flag: str = "--out", say: Any = None,
) -> RunLock:
    """Makes ``run_dir`` this run's: checks it, locks it, cleans it; returns the held :class:`RunLock`.

    Args:
        run_dir (str or PathLike): The run directory.
        resume (bool, optional): The run continues the one in ``run_dir``. (default: :obj:`False`)
        overwrite (bool, optional): Remove an earlier run's files (:data:`RUN_FILES`) first.
            (default: :obj:`False`)
        command (str, optional): Recorded in the lock. (default: ``"gasgnn"``)
        flag (str, optional): The option named in errors. (default: ``"--out"``)
        say (callable, optional): Receives notes (stale lock, removed files); default: silent.

    Raises:
        RunDirError: when ``run_dir`` holds another run and neither ``resume`` nor ``overwrite`` is set,
            when another live process holds it, or when it cannot be written.
    """
    run_dir = check_out_path(run_dir, flag)
    lock = RunLock(run_dir, command).acquire()
    try:
        present = run_files(run_dir)
        if present and not resume and not overwrite:
            shown = ", ".join(present[:6]) + (", ..." if len(present) > 6 else "")
            raise RunDirError(
                f"{flag} {run_dir} already holds a run ({shown}); pass --resume to continue it, "
                f"--overwrite to replace it, or choose another {flag}"
            )
        notes = list(lock.notes)
        if overwrite and not resume:
            import shutil

            for name in RUN_FILES:
                p = run_dir / name
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                elif p.exists() or p.is_symlink():
                    p.unlink()
            if present:
                notes.append(f"--overwrite: removed the earlier run's files in {run_dir}")
        tmp = clean_temp_files(run_dir)
        if tmp:
            notes.append(f"removed {len(tmp)} temporary file(s) of an interrupted write ({tmp[0].name}, ...)")
        if say is not None:
            for n in notes:
                say(n)
    except BaseException:
        lock.release()
        raise
    return lock
