"""Where a command's latency table comes from: a file (its backend checked against the one asked for) with
missing entries measured, or a new measurement."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from gasgnn.latency.keys import LatencyTableError
from gasgnn.latency.table import LatencyTable

__all__ = ["check_backend", "load_or_measure_table"]


def check_backend(table: LatencyTable, backend: str | None, source: str, flag: str = "--backend") -> str:
    """The backend to measure ``table``'s missing entries (and its networks) with: ``backend``, or the
    table's own when :obj:`None`. Entries of two backends are never mixed in one table.

    Args:
        table (LatencyTable): The table.
        backend (str, optional): The backend asked for.
        source (str): The table's file (or description), named in the error.
        flag (str, optional): The option that asked, named in the error. (default: :obj:`"--backend"`)

    Raises:
        LatencyTableError: one line naming the file and both backends, when they differ.
    """
    if backend is None or backend == table.backend:
        return table.backend
    raise LatencyTableError(f"{source}: the table was measured with the '{table.backend}' latency backend, not "
                            f"'{backend}' ({flag} {backend}); drop {flag} to use '{table.backend}', or measure a "
                            f"'{backend}' table into another file")


def load_or_measure_table(
    path: str | os.PathLike | None, space: Any, device: str = "cpu", save_to: str | os.PathLike | None = None,
    heads: Sequence[str] = ("aspp",), backend: str | None = None, flag: str = "--latency-backend",
) -> LatencyTable:
    """The latency table for ``space``: loaded from ``path`` with missing entries measured, or measured.

    Args:
        path (str or PathLike, optional): A table file; :obj:`None` measures a new table.
        space (SearchSpace): The space the table must cover.
        device (str, optional): Where to measure. (default: :obj:`"cpu"`)
        save_to (str or PathLike, optional): Where a newly measured table is written. (default: :obj:`None`)
        heads (Sequence[str], optional): Heads a loaded table must cover (a new table is measured for
            these and both ASPP and PPM). (default: :obj:`("aspp",)`)
        backend (str, optional): The latency backend missing entries (or a new table) are measured with;
            :obj:`None` is the loaded table's own, or ``torch``. A loaded table of another backend is
            refused (:func:`check_backend`). (default: :obj:`None`)
        flag (str, optional): The option named in that refusal. (default: :obj:`"--latency-backend"`)

    Returns:
        LatencyTable: A table with every entry ``space`` needs.
    """
    if path is not None:
        table = LatencyTable.load(path)
        check_backend(table, backend, str(path), flag)
        table.ensure(space, heads=heads, measure_missing=True)
    else:
        table = LatencyTable.measure(space, device=device, path=save_to, backend=backend,
                                     heads=tuple(dict.fromkeys((*heads, "aspp", "ppm"))))
    return table
