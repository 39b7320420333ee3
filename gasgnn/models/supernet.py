"""The supernet: MixedOp, SearchCell and Supernet (DARTS-style, cell-independent).

Every cell owns its weights and its rows of alpha; nothing is shared between cells. The supernet's
``forward`` takes the alpha tensor aligned with the ArchGraph nodes, so a graph-guided module can hand
in alpha' instead of the raw parameters.

:class:`SearchCell` (a :class:`MixedOp` on every edge) is the readable definition of a search cell and
the reference of the default, node-batched cell (:class:`gasgnn.models.batched.BatchedSearchCell`);
:func:`load_per_edge` converts its weights, and ``tests/models/test_batched.py`` checks that both compute
the same function.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from gasgnn.kernels import mixed_sum
from gasgnn.models.batched import BatchedSearchCell
from gasgnn.models.blocks import MemoryOptions, cell_preprocess, channel_shuffle, keep_bn_stats, strip_leading_relu
from gasgnn.models.heads import build_head
from gasgnn.space import SearchSpace, SpaceError, Stem, build_op, get_op


class MixedOp(nn.Module):
    """All candidate ops on one edge, combined as ``sum_k w_k * op_k(x)`` by :func:`gasgnn.kernels.mixed_sum`.

    ``none`` contributes exactly zero, so it is skipped rather than computed.

    Args:
        C (int): Channels.
        stride (int): 1 or 2.
        ops (sequence of str): Candidate op names (the columns of alpha).
        memory (MemoryOptions or dict, optional): Memory-saving options. (default: :obj:`None`, none)

    Shapes:
        - **input:** ``x`` ``[N, C, H, W]``, ``weights`` ``[K]``
        - **output:** ``[N, C, ceil(H/stride), ceil(W/stride)]``
    """

    def __init__(
        self, C: int, stride: int, ops: Sequence[str], memory: MemoryOptions | Mapping[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.memory = MemoryOptions.coerce(memory)
        self.memory.check_channels(C, stride, ops)
        self.C, self.stride = C, stride
        self.k = self.memory.partial_channels
        C_op = C // self.k
        self.op_names = tuple(ops)
        self.active = [k for k, o in enumerate(self.op_names) if o != "none"]
        mods = []
        for k in self.active:
            op = build_op(self.op_names[k], C_op, stride, affine=False)
            if not get_op(self.op_names[k]).parametric and self.op_names[k] != "skip_connect":
                # DARTS: normalise parameter-free pooling so its scale matches the conv ops'.
                op = nn.Sequential(op, nn.BatchNorm2d(C_op, affine=False))
            mods.append(op)
        self.ops = nn.ModuleList(mods)
        # Which ops take the shared relu(x) instead of x (all False unless shared_relu).
        shared = self.memory.shared_relu
        self.relu_fed = tuple(strip_leading_relu(op) if shared else False for op in self.ops)
        self.register_buffer("_active_idx", torch.tensor(self.active, dtype=torch.long), persistent=False)

    def _mix(self, x: Tensor, w: Tensor) -> Tensor:
        r = F.relu(x) if any(self.relu_fed) else x
        return mixed_sum([op(r if fed else x) for op, fed in zip(self.ops, self.relu_fed)], w)

    def _checkpoint_contexts(self) -> tuple[AbstractContextManager, AbstractContextManager]:
        return nullcontext(), keep_bn_stats(list(self.ops.modules()))

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        """
        Args:
            x (Tensor): ``[N, C, H, W]``.
            weights (Tensor): ``[K]``, typically ``softmax(alpha_row)``.

        Returns:
            Tensor: ``[N, C, H/stride, W/stride]``.
        """
        w = weights.index_select(0, self._active_idx)
        xa = x if self.k == 1 else x[:, : self.C // self.k]
        if self.memory.checkpoint and torch.is_grad_enabled():
            y = checkpoint(self._mix, xa, w, use_reentrant=False, context_fn=self._checkpoint_contexts)
        else:
            y = self._mix(xa, w)
        if self.k == 1:
            return y
        xb = x[:, self.C // self.k :]
        if self.stride == 2:  # ceil_mode matches the ops' ceil(H/2) x ceil(W/2) on odd sizes
            xb = F.max_pool2d(xb, 2, 2, ceil_mode=True)
        return channel_shuffle(torch.cat([y, xb], dim=1), self.k)

    def extra_repr(self) -> str:
        return f"C={self.C}, stride={self.stride}, memory={self.memory}"


class SearchCell(nn.Module):
    """A search cell: ``num_nodes`` intermediate nodes, each the sum of mixed ops on all earlier nodes.

    Edges are stored in ArchGraph order (by destination, then source), so row ``e`` of the cell's
    weights drives ``edges[e]``.

    Args:
        space (SearchSpace): The search space.
        C_pp (int): Channels of the output of cell ``k-2``.
        C_p (int): Channels of the output of cell ``k-1``.
        C (int): Channels of this cell's ops.
        reduction (bool): Whether this is a reduction cell.
        reduction_prev (bool): Whether cell ``k-1`` was a reduction cell.
        memory (MemoryOptions or dict, optional): Memory options of every mixed op. (default: :obj:`None`)
    """

    def __init__(
        self, space: SearchSpace, C_pp: int, C_p: int, C: int, reduction: bool, reduction_prev: bool,
        memory: MemoryOptions | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.num_nodes = space.num_nodes
        self.pre0, self.pre1 = cell_preprocess(C_pp, C_p, C, reduction_prev, affine=False)
        memory = MemoryOptions.coerce(memory)
        self.edges = nn.ModuleList(
            MixedOp(C, 2 if reduction and src < 2 else 1, space.ops, memory) for src, _ in space.cell_edges()
        )

    def forward(self, s0: Tensor, s1: Tensor, weights: Tensor) -> Tensor:
        """
        Args:
            s0 (Tensor): Output of cell ``k-2``.
            s1 (Tensor): Output of cell ``k-1``.
            weights (Tensor): ``[E, K]`` op weights of this cell.

        Returns:
            Tensor: ``[N, num_nodes * C, H', W']``.
        """
        states = [self.pre0(s0), self.pre1(s1)]
        e = 0
        for _ in range(self.num_nodes):
            s = sum(self.edges[e + j](h, weights[e + j]) for j, h in enumerate(states))
            e += len(states)
            states.append(s)
        return torch.cat(states[2:], dim=1)


class Supernet(nn.Module):
    """The GAS supernet: stem, cell-independent search cells and a simple head.

    Args:
        space (SearchSpace): The search space.
        head (str, optional): Registered head name. (default: :obj:`"simple"`)
        head_channels (int, optional): Head width. (default: :obj:`64`)
        memory (MemoryOptions or dict, optional): Memory-saving options of the mixed ops
            (checkpointing, partial channels, shared ReLU; see :class:`MemoryOptions` and
            ``docs/kernels.md``). (default: :obj:`None`, none of them)
        batched (bool, optional): Node-batched cells (:mod:`gasgnn.models.batched`: every op once per
            node on all its outgoing edges), the same function as per-edge cells, faster. Partial
            channels are not batched: with ``partial_channels > 1`` the cells are per-edge.
            (default: :obj:`True`)

    Shapes:
        - **input:** images ``[N, in_channels, H, W]``, alpha ``[num_cells * E, K]`` (optional)
        - **output:** logits ``[N, num_classes, H, W]``
    """

    def __init__(
        self, space: SearchSpace, head: str = "simple", head_channels: int = 64,
        memory: MemoryOptions | Mapping[str, Any] | None = None, batched: bool = True,
    ) -> None:
        super().__init__()
        self.space = space
        self.memory = MemoryOptions.coerce(memory)
        self.batched = batched and self.memory.partial_channels == 1
        if self.batched:
            Cell = BatchedSearchCell
        else:
            Cell = SearchCell
        for k, C in enumerate(space.cell_channels()):  # fail before building anything
            for src, dst in space.cell_edges():
                stride = 2 if space.is_reduction(k) and src < 2 else 1
                self.memory.check_channels(C, stride, space.ops, where=f"cell {k} edge {src}->{dst}")
        self.stem = Stem(space.in_channels, space.stem_channels, num_convs=space.stem_stride.bit_length() - 1)
        C_pp = C_p = space.stem_channels
        cells, red_prev = [], False
        for k, C in enumerate(space.cell_channels()):
            red = space.is_reduction(k)
            cells.append(Cell(space, C_pp, C_p, C, red, red_prev, self.memory))
            C_pp, C_p, red_prev = C_p, space.num_nodes * C, red
        self.cells = nn.ModuleList(cells)
        self.head = build_head(head, C_p, space.num_classes, channels=head_channels)
        self.alpha = nn.Parameter(space.init_alpha())

    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters (alpha)."""
        return [self.alpha]

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        """The network weights (everything but alpha)."""
        return (p for n, p in self.named_parameters() if n != "alpha")

    def arch_graph(self, builder: str = "adjacent", **kwargs) -> object:
        """The ArchGraph of this supernet's space with ``x = alpha`` (sharing storage with the parameter)."""
        return self.space.arch_graph(self.alpha, builder=builder, **kwargs)

    def forward(self, x: Tensor, alpha: Tensor | None = None, weights: Tensor | None = None) -> Tensor:
        """
        Args:
            x (Tensor): Images ``[N, C, H, W]``.
            alpha (Tensor, optional): Architecture parameters aligned with the ArchGraph (e.g. alpha'
                from a guidance module); :obj:`None` uses ``self.alpha``. (default: :obj:`None`)
            weights (Tensor, optional): Op weights ``[num_cells * E, K]`` used as they are (e.g. a
                Gumbel-softmax sample); overrides ``alpha``. (default: :obj:`None`)
        """
        if weights is None:
            weights = torch.softmax(self.alpha if alpha is None else alpha, dim=-1)
        if tuple(weights.shape) != (self.space.num_arch_nodes, self.space.num_ops):
            raise SpaceError(
                f"Supernet: weights/alpha have shape {tuple(weights.shape)}, expected "
                f"[{self.space.num_arch_nodes}, {self.space.num_ops}]"
            )
        size = x.shape[-2:]
        s0 = s1 = self.stem(x)
        for k, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, weights[self.space.cell_slice(k)])
        return F.interpolate(self.head(s1), size=size, mode="bilinear", align_corners=False)


@torch.no_grad()
def load_per_edge(batched: BatchedSearchCell, cell: SearchCell) -> None:
    """Copies the weights and batch-norm statistics of a per-edge :class:`SearchCell` into a
    :class:`BatchedSearchCell` of the same space (so both compute the same function).

    Raises:
        TypeError: an op's batched module has no ``load_edges``.
    """
    batched.pre0.load_state_dict(cell.pre0.state_dict())
    batched.pre1.load_state_dict(cell.pre1.state_dict())
    for node, out in zip(batched.nodes, batched.edges_out):
        mixed = [cell.edges[row] for row in out.rows]  # the per-edge MixedOps of the node's outgoing edges
        for slot, op in node.op_slots():
            j = mixed[0].active.index(slot.col)
            edge_mods = [m.ops[j] for m in mixed]
            if slot.edge_shared:
                # identical on every edge: its (parameter-free) state is edge 0's
                op.load_state_dict(edge_mods[0].state_dict())
            elif hasattr(op, "load_edges"):
                op.load_edges(edge_mods)
            else:
                raise TypeError(f"{type(op).__name__} (op '{slot.name}') has no load_edges(mods)")
