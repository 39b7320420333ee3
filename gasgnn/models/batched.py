"""The node-batched search cell: every candidate op runs once per node, on all of its outgoing edges.

The per-edge cell (:class:`gasgnn.models.supernet.SearchCell`) runs ``K`` ops on each of the 14 edges of a cell.
Here, as soon as node ``i`` exists, each op runs once for the ``n`` edges that leave it: a parametric op
as one ``n``-times wider op (its batch factory in the registry, :mod:`gasgnn.space.batched`), a
parameter-free op (pooling + batch norm, identity) once, shared by all ``n`` edges. One fused weighted
accumulation (:func:`gasgnn.kernels.edge_mix`) then gives every edge's mixed output, and a destination
node is the sum of its incoming edges. It is the same function as the per-edge cell; only the parameter
layout differs (:func:`load_per_edge` converts).

Ops without a batch factory fall back to ``n`` per-edge modules whose outputs are concatenated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

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


class NodeOps(nn.Module):
    """All candidate ops on the ``n`` edges that leave one node, mixed per edge.

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
        batched, shared, cols_b, cols_s = [], [], [], []
        for k, name in enumerate(self.op_names):
            if name == "none":  # exactly zero: never computed
                continue
            spec = get_op(name)
            if spec.batch is not None:
                op = spec.batch(C, stride, False, n)
            else:
                op = PerEdge(build_op(name, C, stride, affine=False) for _ in range(n))
            is_shared = getattr(op, "edge_shared", False)
            if _needs_bn(name):
                if isinstance(op, PerEdge):
                    op = PerEdge(nn.Sequential(m, nn.BatchNorm2d(C, affine=False)) for m in op)
                elif is_shared:
                    op.append(nn.BatchNorm2d(C, affine=False))
                else:
                    op = _WithBN(op, nn.BatchNorm2d(n * C, affine=False))
            (shared if is_shared else batched).append(op)
            (cols_s if is_shared else cols_b).append(k)
        self.batched, self.shared = nn.ModuleList(batched), nn.ModuleList(shared)
        self.cols = cols_b + cols_s  # column order edge_mix expects: batched ops, then shared ones
        self.register_buffer("_cols", torch.tensor(self.cols, dtype=torch.long), persistent=False)
        self.relu_fed: tuple[bool, ...] = tuple(
            _strip_relu(op) if self.memory.shared_relu else False for op in (*batched, *shared)
        )

    def _mix(self, x: Tensor, w: Tensor) -> Tensor:
        r = torch.relu(x) if any(self.relu_fed) else x
        outs = [op(r if fed else x) for op, fed in zip((*self.batched, *self.shared), self.relu_fed)]
        return edge_mix(outs[: len(self.batched)], outs[len(self.batched):], w)

    def _checkpoint_contexts(self) -> tuple[AbstractContextManager, AbstractContextManager]:
        return nullcontext(), keep_bn_stats(list(self.modules()))

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        w = weights.index_select(1, self._cols)
        if self.memory.checkpoint and torch.is_grad_enabled():
            return checkpoint(self._mix, x, w, use_reentrant=False, context_fn=self._checkpoint_contexts)
        return self._mix(x, w)

    def extra_repr(self) -> str:
        return f"C={self.C}, stride={self.stride}, n={self.n}, memory={self.memory}"


def _strip_relu(op: nn.Module) -> bool:
    if isinstance(op, PerEdge):  # every copy or none: they are built alike
        return all([strip_leading_relu(m) for m in op])
    return strip_leading_relu(op)


class BatchedSearchCell(nn.Module):
    """A search cell computed node by node (see the module docs); same arguments and function as
    :class:`gasgnn.models.supernet.SearchCell`."""

    def __init__(
        self, space: SearchSpace, C_pp: int, C_p: int, C: int, reduction: bool, reduction_prev: bool,
        memory: MemoryOptions | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.reduction, self.num_nodes, self.C = reduction, space.num_nodes, C
        self.pre0, self.pre1 = cell_preprocess(C_pp, C_p, C, reduction_prev, affine=False)
        edge_of = {e: i for i, e in enumerate(space.cell_edges())}
        nodes = []
        for i in range(self.num_nodes + 1):  # the last node has no outgoing edges
            dsts = list(range(max(2, i + 1), self.num_nodes + 2))
            stride = 2 if reduction and i < 2 else 1
            nodes.append(NodeOps(C, stride, space.ops, len(dsts), memory))
            # rows of this cell's weights, in the order of the node's outgoing edges
            self.register_buffer(f"_rows{i}", torch.tensor([edge_of[(i, j)] for j in dsts]), persistent=False)
        self.nodes = nn.ModuleList(nodes)

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
        for i, node in enumerate(self.nodes):
            if i >= 2:  # node i is complete once every earlier node has sent its edges
                states.append(_sum(incoming[i]))
            # split: its backward is one cat of the destinations' gradients
            outs = node(states[i], weights.index_select(0, getattr(self, f"_rows{i}"))).split(self.C, dim=1)
            for j, y in zip(range(max(2, i + 1), self.num_nodes + 2), outs):
                incoming[j].append(y)
        states.append(_sum(incoming[-1]))
        return torch.cat(states[2:], dim=1)


def _sum(ts: list[Tensor]) -> Tensor:
    out = ts[0] + ts[1] if len(ts) > 1 else ts[0]
    for t in ts[2:]:
        out = out + t
    return out
