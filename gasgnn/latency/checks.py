"""Sanity of a latency table's values: a table the search cannot use is refused when it is read.

A 0 ms entry, a NaN or an absurd 1e308 ms passes the JSON schema, then turns the latency term into
NaN/inf mid-search (where the message blames the learning rates). All op entries equal cannot rank ops.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MAX_ENTRY_MS", "check_entries"]

#: The largest credible entry (ms): 1000 s for one op is a broken measurement, not a slow device.
MAX_ENTRY_MS = 1e6


def check_entries(entries: dict[Any, float], source: str, error: type[Exception] = ValueError) -> None:
    """Raises ``error`` naming ``source`` and the entry for a non-finite, non-positive or absurd value, or
    when every op entry has the same value (nothing to rank).

    Args:
        entries (dict): :class:`~gasgnn.latency.keys.LatencyKey` -> ms.
        source (str): The file (or description) named in errors.
        error (type, optional): The exception type. (default: :class:`ValueError`)
    """
    ops = []
    for key, ms in entries.items():
        if not isinstance(ms, (int, float)) or not math.isfinite(ms) or not 0 < ms <= MAX_ENTRY_MS:
            raise error(f"{source}: entry {key.kind} {tuple(key.params)} has {ms!r} ms; every entry must be a "
                        f"finite time in (0, {MAX_ENTRY_MS:g}] ms. Re-measure it (gasgnn latency measure).")
        if key.kind == "op":
            ops.append(ms)
    if len(ops) > 1 and len(set(ops)) == 1:
        raise error(f"{source}: all {len(ops)} op entries are {ops[0]} ms, so the table cannot rank ops; "
                    f"re-measure it (gasgnn latency measure)")
