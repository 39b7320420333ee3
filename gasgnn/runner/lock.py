"""Claiming a run directory before a command writes into it: refusals, the lock, stale temporary files.

:func:`claim_run_dir` refuses a directory holding another run unless the user resumes or overwrites it,
takes a lock (pid, host, start time) so two writers cannot mix their files, removes stale temporary files
of killed writes, and on ``--overwrite`` removes the earlier run's files (so no ``summary.json`` outlives
the run it described). A directory the claim created and the run left empty is removed on release, so a
run refused after the claim leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gasgnn.errors import RefusedError
from gasgnn.runner.rundir import RunDir

__all__ = ["RunDirError", "RunLock", "check_out_path", "claim_run_dir"]


class RunDirError(RefusedError, ValueError):
    """A run directory cannot be used as asked (another run, a live lock, a file in the way)."""


def check_out_path(path: str | os.PathLike, flag: str = "--out", is_dir: bool = True) -> Path:
    """Checks that ``path`` can be written before any work starts.

    Args:
        path (str or PathLike): The output directory (or file, with ``is_dir=False``).
        flag (str, optional): The option named in errors. (default: ``"--out"``)
        is_dir (bool, optional): Whether ``path`` is a directory. (default: :obj:`True`)

    Raises:
        ValueError: naming ``flag`` when ``path`` (or a parent) is a file, or is not writable.
    """
    path = Path(path)
    if is_dir and path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path}: is a file, not a directory")
    if not is_dir and path.is_dir():
        raise ValueError(f"{flag} {path}: is a directory, not a file")
    probe = path if is_dir else path.parent
    while not probe.exists():  # the first existing ancestor decides
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"{flag} {path}: {probe} is a file, so nothing can be created under it")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path}: {probe} is not writable")
    return path


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

    A lock whose process is gone (same host) is stale: it is named and replaced. A lock file that is not
    such a record (torn by a kill, or foreign content) is named and replaced too. A lock from another host
    cannot be checked and is refused with its path, so the user can remove it when sure.

    Args:
        run_dir (str or PathLike): The run directory (created).
        command (str, optional): Recorded in the lock (for the message another writer sees).
    """

    def __init__(self, run_dir: str | os.PathLike, command: str = "gasgnn") -> None:
        self.path = Path(run_dir) / RunDir.LOCK
        self.command = command
        self.held = False
        self.created_dir = False  # the claim made the directory: release removes it if the run left it empty
        self.notes: list[str] = []

    def _info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": self.command}

    def _holder(self) -> dict[str, Any] | None:
        """The lock file's record, :obj:`None` when it is not one (torn or foreign)."""
        try:
            other = json.loads(self.path.read_text(encoding="utf-8") or "null")
        except (OSError, ValueError):
            return None
        return other if isinstance(other, dict) and other else None

    def acquire(self) -> RunLock:
        """Takes the lock; raises :class:`RunDirError` naming the holder when another writer has it."""
        if not self.path.parent.exists():
            self.path.parent.mkdir(parents=True)
            self.created_dir = True
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                other = self._holder()
                if other is None:  # killed between create and write, or not a lock record at all
                    self.notes.append(f"removed an unreadable lock {self.path}")
                    self.path.unlink(missing_ok=True)
                    continue
                who = (f"pid {other.get('pid', '?')} on {other.get('host', '?')}, started "
                       f"{other.get('started', '?')} ({other.get('command', '?')})")
                if other.get("host") == socket.gethostname() and isinstance(other.get("pid"), int) \
                        and not _pid_alive(other["pid"]):
                    self.notes.append(f"removed a stale lock {self.path} of {who}: that process is gone")
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
        """Removes the lock if this process holds it (and the directory, if the claim made it and it is empty)."""
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
            if self.created_dir:
                try:
                    self.path.parent.rmdir()  # only when empty: a refused run leaves nothing behind
                except OSError:
                    pass

    def __enter__(self) -> RunLock:
        return self.acquire() if not self.held else self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def claim_run_dir(
    run_dir: str | os.PathLike, resume: bool = False, overwrite: bool = False, command: str = "gasgnn",
    flag: str = "--out", say: Callable[[str], Any] | None = None,
) -> RunLock:
    """Makes ``run_dir`` this run's: checks it, locks it, cleans it; returns the held :class:`RunLock`.

    Args:
        run_dir (str or PathLike): The run directory.
        resume (bool, optional): The run continues the one in ``run_dir``. (default: :obj:`False`)
        overwrite (bool, optional): Remove an earlier run's files (:attr:`RunDir.RUN_FILES`) first.
            (default: :obj:`False`)
        command (str, optional): Recorded in the lock. (default: ``"gasgnn"``)
        flag (str, optional): The option named in errors. (default: ``"--out"``)
        say (callable, optional): Receives notes (stale lock, removed files); default: silent.

    Raises:
        RunDirError: when ``run_dir`` holds another run and neither ``resume`` nor ``overwrite`` is set,
            or when another live process holds it.
        ValueError: when it cannot be written.
    """
    run = RunDir(check_out_path(run_dir, flag))
    lock = RunLock(run.path, command).acquire()
    try:
        present = run.files()
        if present and not resume and not overwrite:
            shown = ", ".join(present[:6]) + (", ..." if len(present) > 6 else "")
            raise RunDirError(
                f"{flag} {run.path} already holds a run ({shown}); pass --resume to continue it, "
                f"--overwrite to replace it, or choose another {flag}"
            )
        notes = list(lock.notes)
        if overwrite and not resume:
            for name in RunDir.RUN_FILES:
                p = run / name
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                elif p.exists() or p.is_symlink():
                    p.unlink()
            if present:
                notes.append(f"--overwrite: removed the earlier run's files in {run.path}")
        tmp = run.clean_temp_files()
        if tmp:
            notes.append(f"removed {len(tmp)} temporary file(s) of an interrupted write ({tmp[0].name}, ...)")
        for n in notes if say is not None else ():
            say(n)
    except BaseException:
        lock.release()
        raise
    return lock
