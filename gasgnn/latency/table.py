"""Latency lookup tables measured on the device, and the differentiable expected latency.

A :class:`LatencyTable` holds the measured latency (milliseconds) of every piece a network of the search
space is made of: each candidate op at each cell position (its real input shape, stride and channels),
and the fixed parts (stem, cell pre-processing, node sums, output concatenation, head, upsampling). It is
data with metadata (device, torch version, dtype, batch, threads, date), saved as versioned JSON.

The expected latency of the supernet under architecture parameters :math:`\\alpha` is

.. math::
    \\mathbb{E}[\\mathrm{lat}](\\alpha) = c_0 + \\sum_{k} \\Big( c_k + \\sum_{n \\in \\mathrm{cell}\\ k}
    \\sum_{o} \\mathrm{softmax}(\\alpha_n)_o \\, \\mathrm{LUT}[n, o] \\Big)

with :math:`c_0` the stem, head and upsampling and :math:`c_k` the fixed costs of cell :math:`k`; it is
differentiable in :math:`\\alpha`. A search adds :math:`\\lambda \\cdot` :func:`latency_loss` to its loss.

Example::

    table = LatencyTable.measure(space, path="latency.json")   # resumes if the file exists
    graph = space.arch_graph(alpha)
    total_ms, per_cell_ms = table.expected_latency(graph, space=space)
    ms = table.predict(genotype)                                # a derived GASNet
"""

from __future__ import annotations

import copy
import datetime as _dt
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gasgnn.latency.backends import make_backend
from gasgnn.latency.calibrate import apply_calibration
from gasgnn.latency.checks import check_entries, check_entry, check_op_spread
from gasgnn.latency.expected import SpaceLatency, compile_lut
from gasgnn.latency.keys import (
    DEFAULT_BACKEND,
    KINDS,
    OPTIONAL_META_FIELDS,
    TABLE_FORMAT,
    TABLE_VERSION,
    LatencyKey,
    LatencyTableError,
    MissingEntriesError,
    compat_fields,
    device_name,
    dtype_name,
    parse_table,
)
from gasgnn.latency.measure import genotype_plans, measure_key, space_plans, unique, walk
from gasgnn.latency.noise import measure_noise, merge_noise, warn_if_busy
from gasgnn.utils import read_json, write_json

__all__ = ["LatencyTable"]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class LatencyTable:
    """Measured latencies (ms) of network pieces on one device, with metadata.

    Build one by measuring (:meth:`measure`), loading (:meth:`load`) or from known numbers (tests,
    tables from elsewhere): ``LatencyTable({key: ms, ...})`` with keys from :meth:`required_keys`.

    Args:
        entries (mapping, optional): ``{LatencyKey: ms}``. (default: :obj:`None`)
        device (str, optional): Torch device the numbers are for. (default: :obj:`"cpu"`)
        dtype (torch.dtype or str, optional): Dtype of lookups. (default: :obj:`torch.float32`)
        batch (int, optional): Batch size of lookups. (default: :obj:`1`)
        repeats (int, optional): Timed calls per entry (median). (default: :obj:`50`)
        warmup (int, optional): Untimed calls before timing. (default: :obj:`10`)
        backend (str, optional): Latency backend the entries are measured on
            (:data:`~gasgnn.latency.backends.LATENCY_BACKENDS`). (default: :obj:`"torch"`)
        meta (dict, optional): Full metadata (overrides the arguments above; from :meth:`load`).
            (default: :obj:`None`)

    Every entry is checked as it is set, by the same rules :meth:`load` applies to a file
    (:mod:`gasgnn.latency.checks`): a table in memory is always one its file would load.
    """

    def __init__(
        self, entries: Mapping[LatencyKey, float] | None = None, device: str = "cpu",
        dtype: torch.dtype | str = torch.float32, batch: int = 1, repeats: int = 50, warmup: int = 10,
        backend: str = DEFAULT_BACKEND, meta: Mapping[str, Any] | None = None,
    ) -> None:
        if meta is None:
            dev = torch.device(device)
            meta = {
                "device": str(dev), "device_name": device_name(dev), "torch": torch.__version__,
                "dtype": dtype_name(dtype), "batch": int(batch), "threads": torch.get_num_threads(),
                "date": _now(), "repeats": int(repeats), "warmup": int(warmup), "input_sizes": [],
                "backend": str(backend), "backend_info": {},
            }
        self.meta: dict[str, Any] = copy.deepcopy(dict(meta))
        for f, (_, default) in OPTIONAL_META_FIELDS.items():
            self.meta.setdefault(f, copy.deepcopy(default))
        self._entries: dict[LatencyKey, float] = {}
        self._compiled: dict[tuple, SpaceLatency] = {}
        for k, v in (entries or {}).items():
            self[k] = v

    # --- container ---------------------------------------------------------------------------------
    @property
    def dtype(self) -> str:
        """Dtype name of the table's lookups."""
        return self.meta["dtype"]

    @property
    def batch(self) -> int:
        """Batch size of the table's lookups."""
        return self.meta["batch"]

    @property
    def backend(self) -> str:
        """Name of the latency backend the entries were measured on (``torch`` for tables that name none)."""
        return self.meta["backend"]

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: LatencyKey) -> bool:
        return key in self._entries or (key.kind == "op" and key.params[0] == "none")

    def __getitem__(self, key: LatencyKey) -> float:
        if key.kind == "op" and key.params[0] == "none":
            return 0.0  # 'none' contributes nothing to a derived network
        return self._entries[key]

    def __setitem__(self, key: LatencyKey, ms: float) -> None:
        if not isinstance(key, LatencyKey):
            raise LatencyTableError(f"latency table: not a valid latency key: {key!r}")
        check_entry(key, ms, "latency table", LatencyTableError)  # the rules load applies to a file
        ms = float(ms)
        if key.kind == "op":
            check_op_spread([ms, *(v for k, v in self._entries.items() if k.kind == "op" and k != key)],
                            "latency table", LatencyTableError)
        self._entries[key] = ms
        self._compiled.clear()

    def items(self) -> list[tuple[LatencyKey, float]]:
        """``(key, ms)`` pairs, sorted by kind and shape."""
        order = {k: i for i, k in enumerate(KINDS)}
        return sorted(self._entries.items(), key=lambda kv: (order[kv[0].kind], tuple(map(str, kv[0].params)),
                                                             kv[0].params, kv[0].dtype, kv[0].batch))

    def __repr__(self) -> str:
        m = self.meta
        return f"LatencyTable({len(self)} entries, {m['device_name']}, {self.dtype}, batch={self.batch})"

    # --- which entries a space or network needs ----------------------------------------------------
    def required_keys(
        self, space: Any, input_size: tuple[int, int] | Sequence[tuple[int, int]] | None = None,
        heads: Sequence[str] = ("aspp",), head_channels: int = 128, kept: int = 2,
    ) -> list[LatencyKey]:
        """Every entry that expected latency and derived networks of ``space`` need.

        Args:
            space (SearchSpace): The search space.
            input_size (tuple or list of tuples, optional): Image size(s); :obj:`None` uses
                ``space.input_size``. (default: :obj:`None`)
            heads (sequence of str, optional): Heads to cover. (default: :obj:`("aspp",)`)
            head_channels (int, optional): Head width. (default: :obj:`128`)
            kept (int, optional): Inputs kept per node by derivation (sizes the node sums).
                (default: :obj:`2`)
        """
        keys: list[LatencyKey] = []
        for size in _sizes(space, input_size):
            for i, head in enumerate(heads or [None]):
                for key, _ in walk(space, space_plans(space, kept), size, head, head_channels, self.dtype,
                                   self.batch):
                    if i == 0 or key.kind in ("head", "upsample"):
                        keys.append(key)
        return [k for k in unique(keys) if not (k.kind == "op" and k.params[0] == "none")]

    def genotype_keys(
        self, genotype: Any, space: Any = None, input_size: tuple[int, int] | None = None, head: str = "aspp",
        head_channels: int = 128,
    ) -> list[tuple[LatencyKey, int]]:
        """``(key, cell)`` of every piece of the derived network, in execution order (with repeats)."""
        space = _genotype_space(genotype, space)
        size = tuple(input_size or space.input_size)
        return list(walk(space, genotype_plans(genotype), size, head, head_channels, self.dtype, self.batch))

    def missing(self, keys: Iterable[LatencyKey]) -> list[LatencyKey]:
        """The keys (distinct) the table lacks."""
        return [k for k in unique(keys) if k not in self]

    def ensure_keys(
        self, keys: Iterable[LatencyKey], measure_missing: bool = False,
        path: str | os.PathLike | None = None, progress: bool = False,
    ) -> LatencyTable:
        """Checks that the table has ``keys``; measures the missing ones if asked, else raises
        :class:`MissingEntriesError` listing them."""
        missing = self.missing(keys)
        if missing:
            if not measure_missing:
                raise MissingEntriesError(missing, f" ({self.meta['device_name']}, {self.dtype})")
            self.measure_keys(missing, path=path, progress=progress)
        return self

    def ensure(
        self, space: Any, input_size: tuple[int, int] | Sequence[tuple[int, int]] | None = None,
        heads: Sequence[str] = ("aspp",), head_channels: int = 128, measure_missing: bool = False,
        path: str | os.PathLike | None = None, progress: bool = False,
    ) -> LatencyTable:
        """Checks that the table covers ``space`` (see :meth:`required_keys`); with ``measure_missing``
        it measures what is missing on this machine (saving to ``path`` after each entry), otherwise it
        raises :class:`MissingEntriesError` listing the missing entries.

        Returns:
            LatencyTable: ``self``.
        """
        keys = self.required_keys(space, input_size, heads, head_channels)
        return self.ensure_keys(keys, measure_missing, path, progress)

    # --- measuring ---------------------------------------------------------------------------------
    @classmethod
    def measure(
        cls, space: Any, device: str = "cpu", dtype: torch.dtype | str = torch.float32, batch: int = 1,
        input_size: tuple[int, int] | Sequence[tuple[int, int]] | None = None, repeats: int | None = None,
        warmup: int | None = None, progress: bool = True, path: str | os.PathLike | None = None,
        heads: Sequence[str] = ("aspp", "ppm"), head_channels: int = 128, backend: str | None = None,
    ) -> LatencyTable:
        """Measures every entry ``space`` needs on ``device`` and ``backend``.

        Incremental and resumable: with ``path`` pointing to an existing table (same device, torch,
        threads (CPU), dtype, batch and backend), it loads it and measures only the missing entries, saving
        the file atomically after each entry, so a killed measurement resumes where it stopped.

        Args:
            space (SearchSpace): The search space.
            device (str, optional): Torch device. (default: :obj:`"cpu"`)
            dtype (torch.dtype or str, optional): Dtype. (default: :obj:`torch.float32`)
            batch (int, optional): Batch size. (default: :obj:`1`)
            input_size (tuple or list of tuples, optional): Image size(s); :obj:`None` uses
                ``space.input_size``. (default: :obj:`None`)
            repeats (int, optional): Timed calls per entry, median taken; :obj:`None` keeps the file's
                value or 50. (default: :obj:`None`)
            warmup (int, optional): Untimed calls first; :obj:`None` keeps the file's value or 10.
                (default: :obj:`None`)
            progress (bool, optional): Show a progress bar. (default: :obj:`True`)
            path (str or PathLike, optional): Table file to resume from and save to. (default: :obj:`None`)
            heads (sequence of str, optional): Heads to measure. (default: :obj:`("aspp", "ppm")`)
            head_channels (int, optional): Head width. (default: :obj:`128`)
            backend (str, optional): Latency backend; :obj:`None` keeps the file's or uses ``torch``.
                (default: :obj:`None`)

        Returns:
            LatencyTable: The (completed) table.
        """
        if path is not None and Path(path).exists():
            table = cls.load(path)
            want = {"device": str(torch.device(device)), "device_name": device_name(device),
                    "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "dtype": dtype_name(dtype), "batch": int(batch), "backend": backend or table.backend}
            if torch.device(device).type == "cuda":
                del want["threads"]  # CUDA timings do not depend on the CPU thread count
            if repeats is not None:
                want["repeats"] = int(repeats)
            if warmup is not None:
                want["warmup"] = int(warmup)
            bad = [f"{f}: file has {table.meta[f]!r}, this run {v!r}"
                   for f, v in want.items() if table.meta[f] != v]
            if bad:
                raise LatencyTableError(f"{path}: cannot resume into this table, its metadata differs ("
                                        + "; ".join(bad) + "); use another --out file")
        else:
            table = cls(device=device, dtype=dtype, batch=batch, repeats=50 if repeats is None else repeats,
                        warmup=10 if warmup is None else warmup, backend=backend or DEFAULT_BACKEND)
        table.ensure(space, input_size, heads, head_channels, measure_missing=True, path=path,
                     progress=progress)
        if path is not None and not Path(path).exists():
            table.save(path)  # nothing was missing, but the caller asked for a file
        return table

    def measure_keys(
        self, keys: Iterable[LatencyKey], path: str | os.PathLike | None = None, progress: bool = True,
    ) -> list[LatencyKey]:
        """Measures the given keys the table lacks, on the table's device and backend with its repeats/warmup.

        Args:
            keys (iterable of LatencyKey): Entries to have.
            path (str or PathLike, optional): Saved atomically after each entry. (default: :obj:`None`)
            progress (bool, optional): Show a progress bar. (default: :obj:`True`)

        Returns:
            list: The keys measured now (empty when the table already had them all).
        """
        from tqdm.auto import tqdm

        todo = self.missing(keys)
        if not todo:
            return []
        cpu = torch.device(self.meta["device"]).type != "cuda"  # CUDA timings do not depend on CPU threads
        if cpu and torch.get_num_threads() != self.meta["threads"]:
            raise LatencyTableError(
                f"table was measured with {self.meta['threads']} threads, torch now uses "
                f"{torch.get_num_threads()}; set torch.set_num_threads to match or start a new table"
            )
        backend = make_backend(self.backend, self.meta["device"], self.dtype, self.meta["threads"])
        info = backend.info()
        if self.meta["backend_info"] and self.meta["backend_info"] != info:
            raise LatencyTableError(f"table was measured with {self.backend} {self.meta['backend_info']}, this "
                                    f"machine has {info}; start a new table")
        self.meta["backend_info"] = info
        done = []
        noise = [measure_noise(self.meta["device"], self.dtype)]  # the machine's own noise
        bar = tqdm(todo, desc=f"latency table ({self.backend}, {self.meta['device_name']})", unit="entry",
                   disable=not progress)
        for key in bar:
            bar.set_postfix_str(str(key), refresh=True)  # what is being timed now: a huge size says so at once
            self[key] = measure_key(key, self.meta["device"], self.meta["warmup"], self.meta["repeats"], backend)
            if key.kind == "stem":
                size = [key.params[3], key.params[4]]
                if size not in self.meta["input_sizes"]:
                    self.meta["input_sizes"].append(size)
            self.meta["date"] = _now()
            done.append(key)
            if path is not None:
                self.save(path)
            if len(done) % 50 == 0:  # interleaved control bursts: drift over the measurement
                noise.append(measure_noise(self.meta["device"], self.dtype, bursts=2))
        noise.append(measure_noise(self.meta["device"], self.dtype))
        self.meta["noise"] = merge_noise(noise)
        warn_if_busy(self.meta["noise"], "latency table")
        if path is not None:
            self.save(path)
        return done

    # --- JSON --------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON object."""
        return {"format": TABLE_FORMAT, "version": TABLE_VERSION, "meta": dict(self.meta),
                "entries": [{**k.fields(), "ms": v} for k, v in self.items()]}

    @classmethod
    def from_dict(cls, obj: Any, source: str = "latency table") -> LatencyTable:
        """Parses and validates a JSON object; errors are :class:`LatencyTableError` naming ``source``
        and the field (e.g. ``entries[3].ms``)."""
        meta, entries = parse_table(obj, source)
        check_entries(entries, source, LatencyTableError)
        table = cls(meta=meta)
        table._entries = entries
        return table

    def save(self, path: str | os.PathLike) -> Path:
        """Writes the table as JSON, atomically."""
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> LatencyTable:
        """Reads and validates a table file; raises :class:`LatencyTableError` naming the file and field."""
        try:
            obj = read_json(path, "latency table")
        except FileNotFoundError:
            raise
        except ValueError as e:
            raise LatencyTableError(str(e)) from None
        return cls.from_dict(obj, source=str(path))

    def merge(self, other: LatencyTable, prefer: str = "self", force: bool = False) -> LatencyTable:
        """A new table with the entries of both.

        Args:
            other (LatencyTable): The table to merge in.
            prefer (str, optional): Which value wins where both have an entry: ``'self'`` or ``'other'``.
                (default: :obj:`"self"`)
            force (bool, optional): Merge even if device, torch version, threads (CPU), dtype, batch or backend
                differ (the numbers are then not comparable). (default: :obj:`False`)
        """
        if prefer not in ("self", "other"):
            raise ValueError(f"prefer must be 'self' or 'other', got {prefer!r}")
        diff = [f"{f}: {self.meta[f]!r} vs {other.meta[f]!r}"
                for f in compat_fields(self.meta) if self.meta[f] != other.meta[f]]
        if diff and not force:
            raise LatencyTableError("cannot merge latency tables measured differently (" + "; ".join(diff)
                                    + "); pass force=True to merge anyway")
        first, second = (other, self) if prefer == "self" else (self, other)
        out = LatencyTable(meta=self.meta)
        out.meta["input_sizes"] = [list(s) for s in unique(map(tuple, self.meta["input_sizes"]
                                                               + other.meta["input_sizes"]))]
        entries = {**first._entries, **second._entries}
        check_entries(entries, "merged latency table", LatencyTableError)
        out._entries = entries
        return out

    # --- using the table ---------------------------------------------------------------------------
    def for_space(
        self, space: Any, graph: Any = None, head: str = "aspp", head_channels: int = 128, kept: int = 2,
        scale_edges: bool = False, exclude_none: bool = False,
    ) -> SpaceLatency:
        """The compiled per-node LUT ``[N, K]`` and constants of ``space`` (cached).

        Rows are aligned with the ArchGraph nodes through their attributes ``stride``, ``channels``,
        ``height``, ``width`` and the graph's ``op_names`` (``'none'`` costs 0).

        Args:
            space (SearchSpace): Gives the constant parts (stem, pre-processing, sums, concat, head).
            graph (Data, optional): The ArchGraph; :obj:`None` builds ``space.arch_graph()``.
                (default: :obj:`None`)
            head (str, optional): Head of the derived network. (default: :obj:`"aspp"`)
            head_channels (int, optional): Head width. (default: :obj:`128`)
            kept (int, optional): Inputs per node kept by derivation (node-sum constants). (default: :obj:`2`)
            scale_edges (bool, optional): Weigh the edges into node ``d`` by ``min(kept, d) / d``, the
                fraction a derived network keeps, so the total estimates a derived network rather than
                the whole supernet. (default: :obj:`False`)
            exclude_none (bool, optional): Take the expectation over the non-``none`` ops only
                (softmax renormalised without the ``none`` column), as a derived network never keeps
                ``none``; otherwise a latency loss can lower the estimate by moving weight onto ``none``
                without changing the derived network. (default: :obj:`False`)
        """
        if graph is None:
            graph = space.arch_graph()
        for attr in ("stride", "channels", "height", "width", "cell", "dst", "op_names"):
            if getattr(graph, attr, None) is None:
                raise LatencyTableError(f"ArchGraph lacks the node attribute '{attr}' (the LUT uses it)")
        if graph.num_nodes != space.num_arch_nodes or list(graph.op_names) != list(space.ops):
            raise LatencyTableError(
                f"ArchGraph ({graph.num_nodes} nodes, ops {list(graph.op_names)}) does not match the space "
                f"({space.num_arch_nodes} nodes, ops {list(space.ops)})"
            )
        attrs = torch.stack([graph.stride, graph.channels, graph.height, graph.width, graph.cell, graph.dst])
        attrs = attrs.cpu()  # the graph may live on the GPU; the compiled LUT casts itself to alpha's device
        sig = (space, head, head_channels, kept, scale_edges, exclude_none, tuple(graph.op_names),
               attrs.numpy().tobytes())
        if sig not in self._compiled:
            self._compiled[sig] = compile_lut(self, space, graph, attrs, head, head_channels, kept, scale_edges,
                                              exclude_none)
        return self._compiled[sig]

    def expected_latency(
        self, graph: Any, alpha: Tensor | None = None, *, space: Any = None, head: str = "aspp",
        head_channels: int = 128, kept: int = 2, scale_edges: bool = False, exclude_none: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """Differentiable expected latency (ms) of the supernet under ``alpha``; see
        :func:`expected_latency` and :meth:`for_space`."""
        space = space if space is not None else getattr(graph, "space", None)
        if space is None:
            raise LatencyTableError("expected_latency needs the SearchSpace (space=...) for its constants")
        lut = self.for_space(space, graph, head, head_channels, kept, scale_edges, exclude_none)
        return lut(graph.x if alpha is None else alpha)

    def predict(
        self, genotype: Any, head: str = "aspp", space: Any = None, input_size: tuple[int, int] | None = None,
        head_channels: int = 128, breakdown: bool = False, raw: bool = False,
    ) -> float | dict[str, float]:
        """The table's latency (ms) of the derived :class:`~gasgnn.models.net.GASNet` of ``genotype``.

        Args:
            genotype (Genotype): The derived architecture.
            head (str, optional): Head. (default: :obj:`"aspp"`)
            space (SearchSpace, optional): :obj:`None` uses ``genotype.space``. (default: :obj:`None`)
            input_size (tuple, optional): Image size; :obj:`None` uses the space's. (default: :obj:`None`)
            head_channels (int, optional): Head width. (default: :obj:`128`)
            breakdown (bool, optional): Return ``{kind: ms}`` plus ``'total'`` instead.
                (default: :obj:`False`)
            raw (bool, optional): The plain sum of entries, ignoring a calibration stored in the metadata
                (``gasgnn latency calibrate``). (default: :obj:`False`)

        Raises:
            MissingEntriesError: if the table lacks entries the network needs.
        """
        keys = self.genotype_keys(genotype, space, input_size, head, head_channels)
        missing = self.missing(k for k, _ in keys)
        if missing:
            raise MissingEntriesError(missing, " for this genotype")
        parts: dict[str, float] = {}
        for k, _ in keys:
            parts[k.kind] = parts.get(k.kind, 0.0) + self[k]
        total = sum(parts.values())
        if not raw:  # whole-network calibration (scale, offset) for this size and head, if measured
            gs = space if space is not None else getattr(genotype, "space", None)
            size = input_size or (gs.input_size if gs is not None else None)
            total = apply_calibration(self.meta, total, size, head) if size is not None else total
        return {**parts, "total": total} if breakdown else total


def _sizes(space: Any, input_size: Any) -> list[tuple[int, int]]:
    if input_size is None:
        return [tuple(space.input_size)]
    if len(input_size) == 2 and all(isinstance(v, int) for v in input_size):
        return [tuple(input_size)]
    return [tuple(int(v) for v in s) for s in input_size]


def _genotype_space(genotype: Any, space: Any) -> Any:
    space = space if space is not None else genotype.space
    if space is None:
        raise LatencyTableError("the genotype carries no search space; pass space=...")
    return space
