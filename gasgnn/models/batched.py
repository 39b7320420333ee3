"""The node-batched search cell: every candidate op runs once per node, on all of its outgoing edges.

The per-edge cell (:class:`gasgnn.models.supernet.SearchCell`) runs ``K`` ops on each of the 14 edges of a cell.
Here, as soon as node ``i`` exists, each op runs once for the ``n`` edges that leave it: a parametric op
as one ``n``-times wider op (its batch factory in the registry, :mod:`gasgnn.space.batched`), a
parameter-free op (pooling + batch norm, identity) once, shared by all ``n`` edges. One fused weighted
accumulation (:func:`gasgnn.kernels.edge_mix`) then gives every edge's mixed output, and a destination
node is the sum of its incoming edges. Ops without a batch factory fall back to ``n`` per-edge modules
whose outputs are concatenated (:class:`PerEdge`).

**The reference.** This is the supernet's default, fast path; the readable per-edge cell
(:class:`~gasgnn.models.supernet.SearchCell` and its :class:`~gasgnn.models.supernet.MixedOp`, in
:mod:`gasgnn.models.supernet`) is the definition it must match. Only the parameter layout differs
(:func:`gasgnn.models.supernet.load_per_edge` converts), and ``tests/models/test_batched.py`` checks that
both compute the same function: outputs, the gradients of the inputs, of alpha and of every weight, and
the batch-norm statistics, for the GAS and DARTS ops, user ops with and without batch factories, normal
and reduction cells, and each memory option. Change the two together.

The per-node structures: :class:`NodeOps` holds one :class:`OpSlot` per op (its alpha column, whether it
is edge-shared, whether it reads the shared ReLU) beside its modules, and the cell holds one
:class:`NodeEdges` per node (where its outgoing edges go and which rows of the cell's weights drive them).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from gasgnn.kernels import edge_mix
from gasgnn.models.blocks import MemoryOptions, cell_preprocess, keep_bn_stats, strip_leading_relu
from gasgnn.space import SearchSpace, build_op, get_op, load_bn


def _needs_bn(name: str) -> bool:
    # As MixedOp: parameter-free ops other than skip get an affine-free batch norm (DARTS).
    return not get_op(name).parametric and name != "skip_connect"


class PerEdge(nn.ModuleList):
    """Fallback for an op without a batch factory: ``n`` per-edge modules, outputs concatenated."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([m(x) for m in self], dim=1)

    def load_edges(self, mods: Sequence[nn.Module]) -> None:
        for m, src in zip(self, mods):
            m.load_state_dict(src.state_dict())


class _WithBN(nn.Sequential):
    """A batched parameter-free op followed by its affine-free batch norm."""

    def load_edges(self, mods: Sequence[nn.Module]) -> None:
        if hasattr(self[0], "load_edges"):
            self[0].load_edges([m[0] for m in mods])
        load_bn(self[1], [m[1] for m in mods])


@dataclass(frozen=True)
class OpSlot:
    """One candidate op of a :class:`NodeOps`: what the node needs to know to run and mix it.

    Args:
        name (str): The op's registry name.
        col (int): Its column of alpha (of the node's ``[n, K]`` weights).
        edge_shared (bool): Computed once for all edges (``[N, C, H', W']``, an
            :class:`~gasgnn.space.EdgeShared` op) rather than per edge (``[N, n*C, H', W']``).
        relu_fed (bool): Reads the node's shared ``relu(x)`` (its own leading ReLU was removed).
    """

    name: str
    col: int
    edge_shared: bool
    relu_fed: bool


def _node_op(name: str, C: int, stride: int, n: int) -> nn.Module:
    """The op ``name`` on ``n`` edges: its batch factory, else :class:`PerEdge`; plus the affine-free batch
    norm that parameter-free ops get (as in :class:`~gasgnn.models.supernet.MixedOp`)."""
    spec = get_op(name)
    op = spec.batch(C, stride, False, n) if spec.batch is not None else PerEdge(
        build_op(name, C, stride, affine=False) for _ in range(n))
    if not _needs_bn(name):
        return op
    if isinstance(op, PerEdge):
        return PerEdge(nn.Sequential(m, nn.BatchNorm2d(C, affine=False)) for m in op)
    if getattr(op, "edge_shared", False):
        op.append(nn.BatchNorm2d(C, affine=False))
        return op
    return _WithBN(op, nn.BatchNorm2d(n * C, affine=False))


class NodeOps(nn.Module):
    """All candidate ops on the ``n`` edges that leave one node, mixed per edge.

    The modules are in :attr:`batched` (per-edge outputs, ``[N, n*C, H', W']``) and :attr:`shared`
    (edge-shared outputs, ``[N, C, H', W']``), the order :func:`gasgnn.kernels.edge_mix` takes them in;
    :attr:`slots` describes them in that order (:meth:`op_slots` pairs them up). ``none`` is exactly zero
    and never built.

    Args:
        C (int): Channels.
        stride (int): 1 or 2.
        ops (sequence of str): Candidate op names (the columns of alpha).
        n (int): Outgoing edges.
        memory (MemoryOptions or dict, optional): ``checkpoint`` and ``shared_relu`` apply;
            ``partial_channels`` must be 1 (the supernet falls back to per-edge cells otherwise).

    Shapes:
        - **input:** ``x`` ``[N, C, H, W]``, ``weights`` ``[n, K]``
        - **output:** ``[N, n * C, H/stride, W/stride]``, edge ``m`` in channels ``m*C:(m+1)*C``
    """

    def __init__(
        self, C: int, stride: int, ops: Sequence[str], n: int,
        memory: MemoryOptions | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.memory = MemoryOptions.coerce(memory)
        if self.memory.partial_channels != 1:
            raise ValueError("NodeOps: partial_channels is not batched; use the per-edge SearchCell")
        self.C, self.stride, self.n, self.op_names = C, stride, n, tuple(ops)
        per_edge: list[tuple[OpSlot, nn.Module]] = []
        shared: list[tuple[OpSlot, nn.Module]] = []
        for col, name in enumerate(self.op_names):
            if name == "none":
                continue
            op = _node_op(name, C, stride, n)
            fed = _strip_relu(op) if self.memory.shared_relu else False
            is_shared = bool(getattr(op, "edge_shared", False))
            (shared if is_shared else per_edge).append((OpSlot(name, col, is_shared, fed), op))
        self.batched = nn.ModuleList(op for _, op in per_edge)
        self.shared = nn.ModuleList(op for _, op in shared)
        self.slots: tuple[OpSlot, ...] = tuple(slot for slot, _ in (*per_edge, *shared))
        self._any_relu_fed = any(slot.relu_fed for slot in self.slots)
        self.register_buffer("_cols", torch.tensor([s.col for s in self.slots], dtype=torch.long), persistent=False)

    def op_slots(self) -> Iterator[tuple[OpSlot, nn.Module]]:
        """Every built op as ``(slot, module)``: the per-edge ones, then the edge-shared ones."""
        return zip(self.slots, (*self.batched, *self.shared))

    def _mix(self, x: Tensor, w: Tensor) -> Tensor:
        r = torch.relu(x) if self._any_relu_fed else x
        outs = [op(r if slot.relu_fed else x) for slot, op in self.op_slots()]
        return edge_mix(outs[: len(self.batched)], outs[len(self.batched):], w)

    def _checkpoint_contexts(self) -> tuple[AbstractContextManager, AbstractContextManager]:
        return nullcontext(), keep_bn_stats(list(self.modules()))

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        w = weights.index_select(1, self._cols)  # the slots' columns, in the slots' order
        if self.memory.checkpoint and torch.is_grad_enabled():
            return checkpoint(self._mix, x, w, use_reentrant=False, context_fn=self._checkpoint_contexts)
        return self._mix(x, w)

    def extra_repr(self) -> str:
        return f"C={self.C}, stride={self.stride}, n={self.n}, memory={self.memory}"


def _strip_relu(op: nn.Module) -> bool:
    if isinstance(op, PerEdge):  # every copy or none: they are built alike
        return all([strip_leading_relu(m) for m in op])
    return strip_leading_relu(op)


class NodeEdges(NamedTuple):
    """The edges leaving node ``src`` of a cell: edge ``m`` goes to node ``dsts[m]`` and is driven by row
    ``rows[m]`` of the cell's ``[E, K]`` weights (ArchGraph order)."""

    src: int
    dsts: tuple[int, ...]
    rows: tuple[int, ...]


class BatchedSearchCell(nn.Module):
    """A search cell computed node by node (see the module docs); same arguments and function as
    :class:`gasgnn.models.supernet.SearchCell`, its reference.

    :attr:`nodes` holds a :class:`NodeOps` for every node with outgoing edges (the inputs 0, 1 and all
    intermediate nodes but the last), :attr:`edges_out` the matching :class:`NodeEdges`.
    """

    def __init__(
        self, space: SearchSpace, C_pp: int, C_p: int, C: int, reduction: bool, reduction_prev: bool,
        memory: MemoryOptions | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.reduction, self.num_nodes, self.C = reduction, space.num_nodes, C
        self.pre0, self.pre1 = cell_preprocess(C_pp, C_p, C, reduction_prev, affine=False)
        row_of = {edge: e for e, edge in enumerate(space.cell_edges())}
        edges_out = []
        for i in range(self.num_nodes + 1):  # the last node has no outgoing edges
            dsts = tuple(range(max(2, i + 1), self.num_nodes + 2))
            edges_out.append(NodeEdges(i, dsts, tuple(row_of[(i, j)] for j in dsts)))
        self.edges_out: tuple[NodeEdges, ...] = tuple(edges_out)
        self.nodes = nn.ModuleList(
            NodeOps(C, 2 if reduction and e.src < 2 else 1, space.ops, len(e.dsts), memory) for e in self.edges_out
        )
        # One gather of every node's rows per forward, split per node (views): _rows is edges_out's rows.
        self.register_buffer("_rows", torch.tensor([r for e in self.edges_out for r in e.rows]), persistent=False)
        self._split = tuple(len(e.rows) for e in self.edges_out)

    def forward(self, s0: Tensor, s1: Tensor, weights: Tensor) -> Tensor:
        """
        Args:
            s0 (Tensor): Output of cell ``k-2``.
            s1 (Tensor): Output of cell ``k-1``.
            weights (Tensor): ``[E, K]`` op weights of this cell (ArchGraph edge order).

        Returns:
            Tensor: ``[N, num_nodes * C, H', W']``.
        """
        states = [self.pre0(s0), self.pre1(s1)]
        incoming: list[list[Tensor]] = [[] for _ in range(self.num_nodes + 2)]
        node_weights = weights.index_select(0, self._rows).split(self._split)
        for node, out, w in zip(self.nodes, self.edges_out, node_weights):
            if out.src >= 2:  # an intermediate node is complete once every earlier node has sent its edges
                states.append(_sum(incoming[out.src]))
            # split: its backward is one cat of the destinations' gradients
            for j, y in zip(out.dsts, node(states[out.src], w).split(self.C, dim=1)):
                incoming[j].append(y)
        states.append(_sum(incoming[-1]))
        return torch.cat(states[2:], dim=1)


def _sum(ts: list[Tensor]) -> Tensor:
    out = ts[0] + ts[1] if len(ts) > 1 else ts[0]
    for t in ts[2:]:
        out = out + t
    return out
