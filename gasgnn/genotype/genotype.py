"""The Genotype: the derived architecture graph.

A :class:`Genotype` round-trips losslessly between JSON, PyG :class:`~torch_geometric.data.Data`,
:mod:`networkx` and (for DARTS-compatible cells) the DARTS text notation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import networkx as nx
import torch
from torch_geometric.data import Data

from gasgnn.genotype.darts import genotype_from_darts
from gasgnn.genotype.data import genotype_from_data, genotype_to_data
from gasgnn.genotype.errors import GenotypeError
from gasgnn.space import OPS, SearchSpace, SpaceError
from gasgnn.utils import content_sha1, read_json, write_json

__all__ = ["GENOTYPE_FORMAT", "GENOTYPE_VERSION", "CellGenotype", "Genotype", "random_genotype"]

# ------------------------------------------------------------------------------------------------
# Genotype

GENOTYPE_FORMAT = "gasgnn-genotype"
GENOTYPE_VERSION = 1


@dataclass(frozen=True)
class CellGenotype:
    """The derived architecture of one cell.

    Args:
        edges (tuple): Kept edges ``(src, dst, op)``; nodes 0 and 1 are the cell inputs, nodes
            ``2 .. num_nodes + 1`` intermediate.
        reduction (bool): Whether the cell halves the resolution (ops on input nodes have stride 2).
        channels (int): Op channels of the cell.
        num_nodes (int): Intermediate nodes.
        concat (tuple): Nodes concatenated into the output. (default: all intermediate nodes)
    """

    edges: tuple[tuple[int, int, str], ...]
    reduction: bool
    channels: int
    num_nodes: int = 4
    concat: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "edges", tuple((int(s), int(d), str(o)) for s, d, o in self.edges))
        if not self.concat:
            object.__setattr__(self, "concat", tuple(range(2, self.num_nodes + 2)))
        else:
            object.__setattr__(self, "concat", tuple(int(c) for c in self.concat))

    def stride(self, src: int) -> int:
        """Stride of an op leaving node ``src``."""
        return 2 if self.reduction and src < 2 else 1


@dataclass(frozen=True)
class Genotype:
    """A derived, cell-heterogeneous network: one :class:`CellGenotype` per cell.

    Args:
        cells (tuple): The cells in network order.
        space (SearchSpace, optional): The search space it was derived in (stem, classes, ...),
            carried along in JSON so a genotype file is self-contained. (default: :obj:`None`)
    """

    cells: tuple[CellGenotype, ...]
    space: SearchSpace | None = field(default=None, compare=True)
    #: The cell class (the conversions in :mod:`gasgnn.genotype.data` and :mod:`~gasgnn.genotype.darts`
    #: build cells through it, so they need not import this module).
    cell_type: ClassVar[type[CellGenotype]] = CellGenotype

    def __post_init__(self) -> None:
        object.__setattr__(self, "cells", tuple(self.cells))
        _validate_cells(self.cells, self.space)

    def __len__(self) -> int:
        return len(self.cells)

    # --- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON object."""
        out: dict[str, Any] = {"format": GENOTYPE_FORMAT, "version": GENOTYPE_VERSION}
        if self.space is not None:
            out["space"] = self.space.to_dict()
        out["cells"] = [
            {
                "reduction": c.reduction,
                "channels": c.channels,
                "num_nodes": c.num_nodes,
                "concat": list(c.concat),
                "edges": [{"src": s, "dst": d, "op": o} for s, d, o in c.edges],
            }
            for c in self.cells
        ]
        return out

    @classmethod
    def from_dict(cls, obj: Any) -> Genotype:
        """Parses and validates a JSON object; raises :class:`GenotypeError` naming the bad field."""

        if not isinstance(obj, dict):
            raise GenotypeError(f"genotype: expected a JSON object, got {type(obj).__name__}")
        for key in ("format", "version", "cells"):
            if key not in obj:
                raise GenotypeError(f"genotype: missing field '{key}'")
        if obj["format"] != GENOTYPE_FORMAT:
            raise GenotypeError(f"genotype.format: expected '{GENOTYPE_FORMAT}', got {obj['format']!r}")
        if obj["version"] != GENOTYPE_VERSION:
            raise GenotypeError(
                f"genotype.version: unsupported version {obj['version']!r} (this gasgnn reads {GENOTYPE_VERSION})"
            )
        space = None
        if obj.get("space") is not None:
            try:
                space = SearchSpace.from_dict(obj["space"])
            except SpaceError as e:
                raise GenotypeError(f"genotype.space: {e}") from None
        if not isinstance(obj["cells"], list) or not obj["cells"]:
            raise GenotypeError("genotype.cells: must be a non-empty list")
        cells = []
        for k, c in enumerate(obj["cells"]):
            where = f"cells[{k}]"
            if not isinstance(c, dict):
                raise GenotypeError(f"{where}: expected an object")
            for key in ("reduction", "channels", "edges"):
                if key not in c:
                    raise GenotypeError(f"{where}: missing field '{key}'")
            if not isinstance(c["reduction"], bool):
                raise GenotypeError(f"{where}.reduction: must be true or false, got {c['reduction']!r}")
            for key in ("channels", "num_nodes"):
                if key in c and (not isinstance(c[key], int) or isinstance(c[key], bool) or c[key] < 1):
                    raise GenotypeError(f"{where}.{key}: must be a positive integer, got {c[key]!r}")
            if not isinstance(c["edges"], list):
                raise GenotypeError(f"{where}.edges: must be a list")
            edges = []
            for i, e in enumerate(c["edges"]):
                ew = f"{where}.edges[{i}]"
                if not isinstance(e, dict):
                    raise GenotypeError(f"{ew}: expected an object with src, dst, op")
                for key in ("src", "dst", "op"):
                    if key not in e:
                        raise GenotypeError(f"{ew}: missing field '{key}'")
                for key in ("src", "dst"):
                    if not isinstance(e[key], int) or isinstance(e[key], bool):
                        raise GenotypeError(f"{ew}.{key}: must be an integer, got {e[key]!r}")
                if not isinstance(e["op"], str):
                    raise GenotypeError(f"{ew}.op: must be a string, got {e['op']!r}")
                edges.append((e["src"], e["dst"], e["op"]))
            concat = c.get("concat", [])  # missing: all intermediate nodes
            if not isinstance(concat, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in concat):
                raise GenotypeError(f"{where}.concat: must be a list of node indices")
            if "concat" in c and not concat:
                raise GenotypeError(f"{where}.concat: is empty (a cell outputs at least one node; leave the field "
                                    f"out for all intermediate nodes)")
            cells.append(
                CellGenotype(tuple(edges), c["reduction"], c["channels"], c.get("num_nodes", 4), tuple(concat))
            )
        return cls(tuple(cells), space)

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The JSON text; written atomically to ``path`` when given."""
        import json

        text = json.dumps(self.to_dict(), indent=2) + "\n"
        if path is not None:
            write_json(path, self.to_dict())
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> Genotype:
        """Loads from JSON text or a file path; errors name the file and the field."""
        import json

        s = str(text_or_path)
        if isinstance(text_or_path, os.PathLike) or not s.lstrip().startswith("{"):
            try:
                return cls.from_dict(read_json(s, "genotype file"))
            except GenotypeError as e:
                raise GenotypeError(f"{s}: {e}") from None
        try:
            obj = json.loads(s)
        except json.JSONDecodeError as e:
            raise GenotypeError(f"genotype: not valid JSON: {e}") from None
        return cls.from_dict(obj)

    # --- PyG -----------------------------------------------------------------------------------
    def to_data(self, vocab: Sequence[str] | None = None) -> Data:
        """The derived graph as PyG ``Data``; see :func:`gasgnn.genotype.data.genotype_to_data`.

        ``edge_op`` indexes one global op vocabulary (:func:`~gasgnn.genotype.data.op_vocabulary`), so
        genotypes batch with consistent op ids and ``Batch.to_data_list()`` round-trips.
        """
        return genotype_to_data(self, vocab)

    @classmethod
    def from_data(cls, data: Data) -> Genotype:
        """Inverse of :meth:`to_data` (one graph; split a ``Batch`` with ``to_data_list()`` first)."""
        return genotype_from_data(data, cls)

    # --- networkx ------------------------------------------------------------------------------
    def to_networkx(self, multigraph: bool | None = None) -> nx.DiGraph:
        """The derived graph as a :class:`networkx.DiGraph` with nodes ``(cell, node)``.

        A genotype with multi-edges (a node taking two ops from one input) gives a
        :class:`networkx.MultiDiGraph`; ``multigraph=True`` forces one.

        Node attributes: ``cell``, ``index``, ``kind`` ('input' or 'intermediate'), ``in_concat``.
        Edge attributes: ``op``, ``stride``, ``order`` (position in the genotype), plus the op's
        ``light`` and ``large_rf`` flags from the registry. Graph attributes: ``cells`` (per-cell
        reduction, channels, num_nodes) and ``space``.
        """
        if multigraph is None:
            multigraph = self.has_multi_edges()
        elif not multigraph and self.has_multi_edges():
            raise GenotypeError("to_networkx: the genotype has multi-edges; a DiGraph would drop some")
        g = nx.MultiDiGraph() if multigraph else nx.DiGraph()
        g.graph["cells"] = [
            {"reduction": c.reduction, "channels": c.channels, "num_nodes": c.num_nodes} for c in self.cells
        ]
        g.graph["space"] = self.space.to_dict() if self.space is not None else None
        for k, c in enumerate(self.cells):
            for i in range(c.num_nodes + 2):
                g.add_node((k, i), cell=k, index=i, kind="input" if i < 2 else "intermediate",
                           in_concat=i in c.concat)
            for order, (s, d, o) in enumerate(c.edges):
                spec = OPS.get(o, None)
                g.add_edge((k, s), (k, d), op=o, stride=c.stride(s), order=order,
                           light=bool(spec and spec.light), large_rf=bool(spec and spec.large_rf))
        return g

    @classmethod
    def from_networkx(cls, g: nx.DiGraph) -> Genotype:
        """Inverse of :meth:`to_networkx`."""

        infos = g.graph["cells"]
        edges: list[list[tuple[int, int, int, str]]] = [[] for _ in infos]
        for (k, s), (_, d), a in g.edges(data=True):
            edges[k].append((a["order"], s, d, a["op"]))
        cells = []
        for k, info in enumerate(infos):
            concat = tuple(sorted(i for (kk, i), a in g.nodes(data=True) if kk == k and a["in_concat"]))
            es = tuple((s, d, o) for _, s, d, o in sorted(edges[k]))
            cells.append(CellGenotype(es, info["reduction"], info["channels"], info["num_nodes"], concat))
        space = SearchSpace.from_dict(g.graph["space"]) if g.graph.get("space") else None
        return cls(tuple(cells), space)

    def has_multi_edges(self) -> bool:
        """Whether some node takes two (or more) ops from the same input."""
        return any(len({(s, d) for s, d, _ in c.edges}) < len(c.edges) for c in self.cells)

    # --- DARTS notation ------------------------------------------------------------------------
    def to_darts(self, cell: int | None = None) -> str:
        """The DARTS notation.

        DARTS shares one normal and one reduction cell. Without ``cell``, this needs every normal cell
        alike and every reduction cell alike (raises :class:`GenotypeError` otherwise); with ``cell``,
        it writes that one cell into the ``normal`` (or ``reduce``) slot and leaves the other empty.
        DARTS edges are ``(op, src)`` grouped two by two per intermediate node, so every intermediate
        node must have exactly two kept edges.
        """
        if cell is not None:
            c = self.cells[cell]
            normal, reduce = (None, c) if c.reduction else (c, None)
        else:
            normals = {c.edges + (c.concat,) for c in self.cells if not c.reduction}
            reduces = {c.edges + (c.concat,) for c in self.cells if c.reduction}
            if len(normals) > 1 or len(reduces) > 1:
                raise GenotypeError(
                    "to_darts: cells differ (GAS cells are independent); pass cell=k for one cell's notation"
                )
            normal = next((c for c in self.cells if not c.reduction), None)
            reduce = next((c for c in self.cells if c.reduction), None)

        def fmt(c: CellGenotype | None) -> tuple[str, str]:
            if c is None:
                return "[]", "[]"
            by_dst: dict[int, list[tuple[int, str]]] = {}
            for s, d, o in c.edges:
                by_dst.setdefault(d, []).append((s, o))
            items = []
            for d in range(2, c.num_nodes + 2):
                if len(by_dst.get(d, [])) != 2:
                    raise GenotypeError(f"to_darts: node {d} has {len(by_dst.get(d, []))} kept edges, DARTS needs 2")
                items += [f"('{o}', {s})" for s, o in by_dst[d]]
            concat = list(c.concat)
            if concat == list(range(concat[0], concat[-1] + 1)):
                cc = f"range({concat[0]}, {concat[-1] + 1})"
            else:
                cc = repr(concat)
            return "[" + ", ".join(items) + "]", cc

        n, nc = fmt(normal)
        r, rc = fmt(reduce)
        return f"Genotype(normal={n}, normal_concat={nc}, reduce={r}, reduce_concat={rc})"

    @classmethod
    def from_darts(cls, text: str, space: SearchSpace) -> Genotype:
        """Parses DARTS notation safely (an AST walk, never ``eval``) and expands it over ``space``.

        Normal cells take the ``normal`` genotype and reduction cells the ``reduce`` one. Every op is
        checked against the registry and ``space.ops``; errors name the DARTS cell ('normal' or
        'reduce') and list every offending op. See :func:`gasgnn.genotype.darts.genotype_from_darts`.
        """
        return genotype_from_darts(text, space, cls)

    # --- misc ----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Writes the JSON file atomically."""
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Genotype:
        """Reads and validates a JSON genotype file."""
        return cls.from_json(os.fspath(path) if not isinstance(path, str) else path)

    def sha1(self) -> str:
        """The content hash of the genotype: SHA-1 of its JSON object (:meth:`to_dict`, keys sorted).

        The same hash a search's ``summary.json`` records as ``genotype_sha1`` and a pretrained
        network's model card names; genotypes that compare equal hash alike.
        """
        return content_sha1(self.to_dict())

    def ops(self) -> list[str]:
        """All kept ops, cell by cell."""
        return [o for c in self.cells for _, _, o in c.edges]


def _validate_cells(cells: Sequence[CellGenotype], space: SearchSpace | None) -> None:
    if not cells:
        raise GenotypeError("genotype.cells: must not be empty")
    # Every unknown op at once: a user importing a foreign genotype fixes them all in one go.
    unknown = [f"cells[{k}].edges[{i}].op: unknown op '{o}'" for k, c in enumerate(cells)
               for i, (_, _, o) in enumerate(c.edges) if o not in OPS]
    if unknown:
        raise GenotypeError(f"{'; '.join(unknown)} (registered: {sorted(OPS)}; an op of your own is registered by "
                            "importing its module first, e.g. 'gasgnn --plugin my_ops.py ...')")
    if space is not None and len(cells) != space.num_cells:
        raise GenotypeError(f"genotype.cells: {len(cells)} cells but the space has {space.num_cells}")
    for k, c in enumerate(cells):
        where = f"cells[{k}]"
        if c.num_nodes < 1:
            raise GenotypeError(f"{where}.num_nodes: must be >= 1, got {c.num_nodes}")
        if c.channels < 1 or (c.reduction and c.channels % 2):
            raise GenotypeError(f"{where}.channels: bad value {c.channels}")
        if space is not None and c.channels != space.cell_channels()[k]:  # else a huge network is allocated
            raise GenotypeError(f"{where}.channels: {c.channels}, but its space gives cell {k} "
                                f"{space.cell_channels()[k]} channels")
        last = c.num_nodes + 1
        # A node may take two ops from one input (NASNet, AmoebaNet): repeated (src, dst) pairs are
        # multi-edges, kept in order, and every consumer (GASNet, latency, drawings) builds each one.
        for i, (s, d, o) in enumerate(c.edges):
            ew = f"{where}.edges[{i}]"
            if o not in OPS:
                continue  # reported below, all at once
            if o == "none":
                raise GenotypeError(f"{ew}.op: 'none' cannot be a kept edge")
            if not 2 <= d <= last:
                raise GenotypeError(f"{ew}.dst: {d} is not an intermediate node (2..{last})")
            if not 0 <= s < d:
                raise GenotypeError(f"{ew}.src: edge {s}->{d} comes from a later or the same node (src must be < dst)")
        # Two ops from one input are a multi-edge, and a parameter-free op twice is NASNet's (two average
        # poolings of one input); the same parametric op twice on one input is one edge written twice.
        dup = sorted({e for e in c.edges if c.edges.count(e) > 1 and e[2] in OPS and OPS[e[2]].parametric})
        if dup:
            raise GenotypeError(f"{where}.edges: {[list(e) for e in dup]} appear more than once (the same src, dst "
                                f"and parametric op twice)")
        for d in range(2, last + 1):
            if not any(e[1] == d for e in c.edges):
                raise GenotypeError(f"{where}.edges: intermediate node {d} has no incoming edge")
        if not c.concat or any(not 2 <= x <= last for x in c.concat) or len(set(c.concat)) != len(c.concat):
            raise GenotypeError(f"{where}.concat: {list(c.concat)} must be distinct nodes in 2..{last}")
        if space is not None:
            if c.reduction != space.is_reduction(k):
                raise GenotypeError(f"{where}.reduction: {c.reduction} but the space says {space.is_reduction(k)}")
            if c.num_nodes != space.num_nodes:
                raise GenotypeError(f"{where}.num_nodes: {c.num_nodes} but the space has {space.num_nodes}")


def random_genotype(space: SearchSpace, generator: torch.Generator | None = None, k: int = 2) -> Genotype:
    """Samples a genotype uniformly: per intermediate node ``k`` distinct inputs, each a random non-none op.

    Args:
        space (SearchSpace): The space to sample from.
        generator (torch.Generator, optional): Source of randomness. (default: :obj:`None`)
        k (int, optional): Kept inputs per node. (default: :obj:`2`)
    """
    choices = [o for o in space.ops if o != "none"]
    chans = space.cell_channels()
    cells = []
    for c in range(space.num_cells):
        edges = []
        for i in range(space.num_nodes):
            d = i + 2
            srcs = torch.randperm(d, generator=generator)[: min(k, d)].sort().values.tolist()
            for s in srcs:
                o = choices[int(torch.randint(len(choices), (1,), generator=generator))]
                edges.append((s, d, o))
        cells.append(CellGenotype(tuple(edges), space.is_reduction(c), chans[c], space.num_nodes))
    return Genotype(tuple(cells), space)
