"""Latency table keys and the table's JSON schema: what an entry is, how a table file is parsed and checked."""

from __future__ import annotations

import copy
import math
import platform
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

__all__ = [
    "COMPAT_FIELDS", "DEFAULT_BACKEND", "KINDS", "META_FIELDS", "OPTIONAL_META_FIELDS", "PRE_TYPES", "STR_FIELDS",
    "TABLE_FORMAT", "TABLE_VERSION", "LatencyKey", "LatencyTableError", "MissingEntriesError", "compat_fields",
    "device_name", "dtype_name", "parse_table",
]

# Fields of each entry kind, in key order. ``H``/``W`` is always the piece's *input* size.
KINDS: dict[str, tuple[str, ...]] = {
    "op": ("op", "C", "stride", "H", "W"),
    "stem": ("C_in", "C_out", "convs", "H", "W"),
    "pre": ("type", "C_in", "C_out", "H", "W"),
    "sum": ("n", "C", "H", "W"),
    "concat": ("n", "C", "H", "W"),
    "head": ("head", "C_in", "classes", "channels", "H", "W"),
    "upsample": ("C", "H", "W", "H_out", "W_out"),
}
#: Fields whose values are names (every other field is an integer >= 0).
STR_FIELDS = frozenset({"op", "type", "head"})
PRE_TYPES = ("relu_conv_bn", "factorized_reduce")


class LatencyKey(NamedTuple):
    """One measurable piece of a network: its kind, shape parameters, dtype and batch size.

    Args:
        kind (str): One of :data:`KINDS` (``op``, ``stem``, ``pre``, ``sum``, ``concat``, ``head``,
            ``upsample``).
        params (tuple): The values of ``KINDS[kind]``, in order.
        dtype (str): Tensor dtype name (e.g. ``"float32"``).
        batch (int): Batch size.
    """

    kind: str
    params: tuple
    dtype: str
    batch: int

    def fields(self) -> dict[str, Any]:
        """The key as a JSON-ready dict (the entry record without ``ms``)."""
        return {"kind": self.kind, **dict(zip(KINDS[self.kind], self.params)), "dtype": self.dtype,
                "batch": self.batch}

    def __str__(self) -> str:
        args = ", ".join(f"{f}={v}" for f, v in zip(KINDS[self.kind], self.params))
        return f"{self.kind}({args}) {self.dtype} batch={self.batch}"


TABLE_FORMAT = "gasgnn-latency-table"
TABLE_VERSION = 1
META_FIELDS: dict[str, type] = {
    "device": str, "device_name": str, "torch": str, "dtype": str, "batch": int, "threads": int,
    "date": str, "repeats": int, "warmup": int, "input_sizes": list,
}
#: The latency backend of a table that names none (every table before backends existed was eager PyTorch).
DEFAULT_BACKEND = "torch"
#: Metadata a table may lack (tables written before it existed), with the value such a table means.
OPTIONAL_META_FIELDS: dict[str, tuple[type, Any]] = {"backend": (str, DEFAULT_BACKEND), "backend_info": (dict, {})}
# Metadata that must agree before measurements are mixed in one table.
COMPAT_FIELDS = ("device", "device_name", "torch", "threads", "dtype", "batch", "backend")


def compat_fields(meta: dict[str, Any]) -> tuple[str, ...]:
    """The :data:`COMPAT_FIELDS` that matter for a table with ``meta``: a CUDA table's numbers do not depend
    on the CPU thread count, so ``threads`` is left out for it."""
    cuda = str(meta.get("device", "")).startswith("cuda")
    return tuple(f for f in COMPAT_FIELDS if not (cuda and f == "threads"))


class LatencyTableError(ValueError):
    """A corrupt, mismatched or incomplete latency table; the message names the file and field."""


class MissingEntriesError(LatencyTableError):
    """The table lacks entries a space or network needs; ``missing`` lists them."""

    def __init__(self, missing: Sequence[LatencyKey], what: str = "") -> None:
        self.missing = list(missing)
        n = len(self.missing)
        shown = "\n  ".join(str(k) for k in self.missing[:20])
        more = f"\n  ... and {n - 20} more" if n > 20 else ""
        super().__init__(
            f"latency table{what} lacks {n} entr{'y' if n == 1 else 'ies'}:\n  {shown}{more}\n"
            "measure them with table.ensure(space, measure_missing=True) or "
            "'gasgnn latency measure ... --out TABLE.json' (it resumes into an existing file)"
        )


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_table(obj: Any, source: str = "latency table") -> tuple[dict[str, Any], dict[LatencyKey, float]]:
    """Validates a latency-table JSON object; returns ``(meta, {key: ms})``.

    Raises:
        LatencyTableError: naming ``source`` and the field (e.g. ``entries[3].ms``).
    """

    def bad(where: str, msg: str) -> LatencyTableError:
        return LatencyTableError(f"{source}: {where}: {msg}")

    if not isinstance(obj, dict):
        raise bad("top level", f"expected a JSON object, got {type(obj).__name__}")
    for f in ("format", "version", "meta", "entries"):
        if f not in obj:
            raise bad(f, "missing field")
    if obj["format"] != TABLE_FORMAT:
        raise bad("format", f"expected '{TABLE_FORMAT}', got {obj['format']!r}")
    if obj["version"] != TABLE_VERSION:
        raise bad("version", f"unsupported version {obj['version']!r} (this gasgnn reads {TABLE_VERSION})")
    meta = obj["meta"]
    if not isinstance(meta, dict):
        raise bad("meta", "expected an object")
    for f, typ in META_FIELDS.items():
        if f not in meta:
            raise bad(f"meta.{f}", "missing field")
        if not isinstance(meta[f], typ) or isinstance(meta[f], bool):
            raise bad(f"meta.{f}", f"expected {typ.__name__}, got {meta[f]!r}")
    meta = dict(meta)
    for f, (typ, default) in OPTIONAL_META_FIELDS.items():
        meta.setdefault(f, copy.deepcopy(default))
        if not isinstance(meta[f], typ):
            raise bad(f"meta.{f}", f"expected {typ.__name__}, got {meta[f]!r}")
    if not all(isinstance(s, list) and len(s) == 2 and all(map(_is_int, s)) for s in meta["input_sizes"]):
        raise bad("meta.input_sizes", f"expected a list of [H, W], got {meta['input_sizes']!r}")
    if not isinstance(obj["entries"], list):
        raise bad("entries", "expected a list")
    entries: dict[LatencyKey, float] = {}
    for i, e in enumerate(obj["entries"]):
        where = f"entries[{i}]"
        if not isinstance(e, dict):
            raise bad(where, "expected an object")
        kind = e.get("kind")
        if kind not in KINDS:
            raise bad(f"{where}.kind", f"unknown kind {kind!r}; known: {list(KINDS)}")
        for f in (*KINDS[kind], "dtype", "batch", "ms"):
            if f not in e:
                raise bad(f"{where}.{f}", "missing field")
        for f in KINDS[kind]:
            v = e[f]
            if f in STR_FIELDS and not isinstance(v, str):
                raise bad(f"{where}.{f}", f"expected a string, got {v!r}")
            if f not in STR_FIELDS and not (_is_int(v) and v >= 0):
                raise bad(f"{where}.{f}", f"expected an integer >= 0, got {v!r}")
        if not isinstance(e["dtype"], str):
            raise bad(f"{where}.dtype", f"expected a string, got {e['dtype']!r}")
        if not (_is_int(e["batch"]) and e["batch"] >= 1):
            raise bad(f"{where}.batch", f"expected an integer >= 1, got {e['batch']!r}")
        ms = e["ms"]
        if not isinstance(ms, (int, float)) or isinstance(ms, bool) or not math.isfinite(ms) or ms <= 0:
            raise bad(f"{where}.ms", f"latency must be a finite number > 0, got {ms!r}")
        key = LatencyKey(kind, tuple(e[f] for f in KINDS[kind]), e["dtype"], e["batch"])
        if key in entries:
            raise bad(where, f"duplicate entry {key}")
        entries[key] = float(ms)
    return meta, entries


def dtype_name(dtype: torch.dtype | str) -> str:
    """``torch.float32`` or ``"float32"`` -> ``"float32"`` (validated)."""
    name = str(dtype).removeprefix("torch.")
    if not isinstance(getattr(torch, name, None), torch.dtype):
        raise ValueError(f"unknown dtype '{dtype}'")
    return name


def device_name(device: str | torch.device) -> str:
    """A human-readable name of ``device`` (the GPU model, or the CPU model)."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{device.type}: {model}"
