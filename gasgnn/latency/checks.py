"""Sanity of a latency table's keys and values: one set of rules for a table in memory and a table file.

A 0 ms entry, a NaN or an absurd 1e308 ms passes the JSON schema, then turns the latency term into
NaN/inf mid-search (where the message blames the learning rates). All op entries equal cannot rank ops.
:meth:`LatencyTable.__setitem__ <gasgnn.latency.LatencyTable.__setitem__>` and
:meth:`LatencyTable.load <gasgnn.latency.LatencyTable.load>` call the same functions, so a table in memory
is always one its file would load.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from gasgnn.latency.keys import KINDS, STR_FIELDS

__all__ = ["MAX_ENTRY_MS", "check_entries", "check_entry", "check_key", "check_op_spread"]

#: The largest credible entry (ms): 1000 s for one op is a broken measurement, not a slow device.
MAX_ENTRY_MS = 1e6


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_key(key: Any, source: str, error: type[Exception] = ValueError) -> None:
    """Raises ``error`` naming ``source`` unless ``key`` is a well-formed
    :class:`~gasgnn.latency.keys.LatencyKey`: a known kind, one value per field of that kind (strings for
    ``op``/``type``/``head``, integers >= 0 otherwise), a dtype name and a batch >= 1.

    Args:
        key (LatencyKey): The key.
        source (str): The file (or description) named in errors.
        error (type, optional): The exception type. (default: :class:`ValueError`)
    """
    kind = getattr(key, "kind", None)
    params = getattr(key, "params", None)
    if kind not in KINDS or not isinstance(params, tuple) or len(params) != len(KINDS[kind]):
        raise error(f"{source}: not a valid latency key: {key!r}")
    for f, v in zip(KINDS[kind], params):
        ok = isinstance(v, str) if f in STR_FIELDS else (_is_int(v) and v >= 0)
        if not ok:
            want = "a string" if f in STR_FIELDS else "an integer >= 0"
            raise error(f"{source}: latency key {kind} field {f}: expected {want}, got {v!r}")
    if not isinstance(key.dtype, str) or not (_is_int(key.batch) and key.batch >= 1):
        raise error(f"{source}: latency key {kind} {params}: dtype must be a name and batch an integer >= 1, "
                    f"got {key.dtype!r}, {key.batch!r}")


def check_entry(key: Any, ms: Any, source: str, error: type[Exception] = ValueError) -> None:
    """Raises ``error`` naming ``source`` and the entry for a malformed key (:func:`check_key`) or a
    latency that is not a finite time in ``(0, MAX_ENTRY_MS]`` ms.

    Args:
        key (LatencyKey): The key.
        ms (float): Its latency.
        source (str): The file (or description) named in errors.
        error (type, optional): The exception type. (default: :class:`ValueError`)
    """
    check_key(key, source, error)
    bad = isinstance(ms, bool) or not isinstance(ms, (int, float))
    if bad or not math.isfinite(ms) or not 0 < ms <= MAX_ENTRY_MS:
        raise error(f"{source}: entry {key.kind} {tuple(key.params)} has {ms!r} ms; every entry must be a "
                    f"finite time in (0, {MAX_ENTRY_MS:g}] ms. Re-measure it (gasgnn latency measure).")


def check_op_spread(op_ms: Iterable[float], source: str, error: type[Exception] = ValueError) -> None:
    """Raises ``error`` naming ``source`` when there are several op entries and all have one value (a table
    that cannot rank ops).

    Args:
        op_ms (iterable of float): The latencies of the table's ``op`` entries.
        source (str): The file (or description) named in errors.
        error (type, optional): The exception type. (default: :class:`ValueError`)
    """
    ops = list(op_ms)
    if len(ops) > 1 and len(set(ops)) == 1:
        raise error(f"{source}: all {len(ops)} op entries are {ops[0]} ms, so the table cannot rank ops; "
                    f"re-measure it (gasgnn latency measure)")


def check_entries(entries: dict[Any, float], source: str, error: type[Exception] = ValueError) -> None:
    """Raises ``error`` naming ``source`` and the entry for any entry :func:`check_entry` refuses, or when
    every op entry has the same value (:func:`check_op_spread`).

    Args:
        entries (dict): :class:`~gasgnn.latency.keys.LatencyKey` -> ms.
        source (str): The file (or description) named in errors.
        error (type, optional): The exception type. (default: :class:`ValueError`)
    """
    for key, ms in entries.items():
        check_entry(key, ms, source, error)
    check_op_spread((ms for key, ms in entries.items() if key.kind == "op"), source, error)
