"""The errors behind the ``gasgnn`` command's exit codes (imports nothing from gasgnn: every layer may use it).

The command turns every error into one line naming the flag, file or field, and exits with:

=====  =====================================================================================
code   meaning
=====  =====================================================================================
0      done
1      failed for a reason outside the input: a file could not be written (:class:`WriteError`:
       a full disk, a file-size limit), or an unexpected error (then with its traceback)
2      bad input: a flag, a file or a field that cannot work (``ValueError``, ``KeyError``,
       ``FileNotFoundError``, ...); nothing was started
3      refused or diverged run (:class:`RefusedError`): ``--out`` holds another run or is in use,
       ``--resume`` with settings that differ from the checkpoint's or with nothing to resume,
       or the loss became NaN/inf (:class:`DivergedError`); earlier results are kept
130    interrupted (Ctrl-C); the last checkpoint is kept
=====  =====================================================================================
"""

from __future__ import annotations

__all__ = ["EXIT_CODES", "DivergedError", "GasgnnError", "RefusedError", "WriteError"]

#: Exit codes of the ``gasgnn`` command (docs/search.md, "Exit codes").
EXIT_CODES = {"ok": 0, "failed": 1, "bad_input": 2, "refused": 3, "interrupted": 130}


class GasgnnError(Exception):
    """Base of gasgnn's own errors."""


class RefusedError(GasgnnError):
    """A run that cannot go on as asked, given what its run directory holds (exit code 3)."""


class DivergedError(RefusedError, RuntimeError):
    """A loss, weight or batch-norm statistic became NaN or infinite; the last good checkpoint is kept."""


class WriteError(GasgnnError, OSError):
    """A file could not be written (a full disk, a file-size limit); the previous file is kept (exit code 1)."""
