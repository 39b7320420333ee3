"""The supernet: MixedOp, SearchCell and Supernet (DARTS-style, cell-independent).

Every cell owns its weights and its rows of alpha; nothing is shared between cells. The supernet's
``forward`` takes the alpha tensor aligned with the ArchGraph nodes, so a graph-guided module can hand
in alpha' instead of the raw parameters.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint

from gasgnn.models.heads import build_head
from gasgnn.kernels import mixed_sum
from gasgnn.models.blocks import cell_preprocess
from gasgnn.space import FactorizedReduce, Stem, build_op, get_op
from gasgnn.space import SearchSpace, SpaceError


@dataclass(frozen=True)
class MemoryOptions:
    """Memory-saving options of the supernet's mixed ops.

    Args:
        checkpoint (bool, optional): Recompute every mixed op's internals in the backward pass
            (``torch.utils.checkpoint``, non-reentrant) instead of storing them; only the edge input is
            kept. Same outputs and gradients; roughly one more forward of the cells per step.
            (default: :obj:`False`)
        partial_channels (int, optional): ``k`` of PC-DARTS: only ``C/k`` channels of the edge input go
            through the candidate ops; the others bypass them (max-pooled on stride-2 edges) and the
            result is channel-shuffled. ``1`` is the plain mixed op; other values change the function.
            (default: :obj:`1`)
        shared_relu (bool, optional): Compute ``relu(x)`` once per edge and feed it to every op that
            starts with a ReLU (their leading ``nn.ReLU`` is replaced by ``nn.Identity``, so parameter
            names do not change). Same function. (default: :obj:`False`)
    """

    checkpoint: bool = False
    partial_channels: int = 1
    shared_relu: bool = False

    def __post_init__(self) -> None:
        for name in ("checkpoint", "shared_relu"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"MemoryOptions.{name}: must be a bool, got {getattr(self, name)!r}")
        k = self.partial_channels
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"MemoryOptions.partial_channels: must be an integer >= 1, got {k!r}")

    @classmethod
    def coerce(cls, value: MemoryOptions | Mapping[str, Any] | None) -> MemoryOptions:
        """Turns :obj:`None`, a mapping (e.g. from a JSON config) or an instance into an instance."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {f.name for f in fields(cls)}
            if unknown:
                raise ValueError(f"MemoryOptions: unknown option(s) {sorted(unknown)}")
            return cls(**value)
        raise TypeError(f"memory: expected MemoryOptions, a mapping or None, got {type(value).__name__}")

    def check_channels(self, C: int, stride: int, ops: Sequence[str], where: str = "MixedOp") -> None:
        """Raises :class:`SpaceError` if ``partial_channels`` does not fit an edge of ``C`` channels."""
        k = self.partial_channels
        if C % k:
            raise SpaceError(
                f"MemoryOptions.partial_channels: {k} does not divide the {C} channels of {where}"
            )
        if stride == 2 and "skip_connect" in ops and (C // k) % 2:
            raise SpaceError(
                f"MemoryOptions.partial_channels: {where} passes {C // k} = {C}/{k} channels through a "
                "stride-2 skip_connect, which needs an even number"
            )


def _strip_leading_relu(op: nn.Module) -> bool:
    """Replaces the ReLU an op applies first to its input by ``nn.Identity``; returns whether it did."""
    if isinstance(op, FactorizedReduce):
        if isinstance(op.relu, nn.ReLU):  # its forward starts with self.relu (padding commutes with it)
            op.relu = nn.Identity()
            return True
        return False
    if isinstance(op, nn.Sequential) and len(op) > 0:
        if isinstance(op[0], nn.ReLU):
            op[0] = nn.Identity()
            return True
        return _strip_leading_relu(op[0])
    return False


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleaves ``groups`` channel groups (ShuffleNet), so channel ``i`` of group ``g`` lands at
    ``i * groups + g``."""
    N, C, H, W = x.shape
    return x.view(N, groups, C // groups, H, W).transpose(1, 2).reshape(N, C, H, W)


@contextmanager
def _keep_bn_stats(modules: Sequence[nn.Module]) -> Iterator[None]:
    """Restores batch-norm running statistics on exit: the checkpoint recomputation must not count
    the batch a second time."""
    saved = [
        (b, b.clone())
        for m in modules
        if isinstance(m, _BatchNorm)
        for b in (m.running_mean, m.running_var, m.num_batches_tracked)
        if b is not None
    ]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, v in saved:
                b.copy_(v)


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
        self.relu_fed = tuple(_strip_leading_relu(op) if shared else False for op in self.ops)
        self.register_buffer("_active_idx", torch.tensor(self.active, dtype=torch.long), persistent=False)

    def _mix(self, x: Tensor, w: Tensor) -> Tensor:
        r = F.relu(x) if any(self.relu_fed) else x
        return mixed_sum([op(r if fed else x) for op, fed in zip(self.ops, self.relu_fed)], w)

    def _checkpoint_contexts(self) -> tuple[AbstractContextManager, AbstractContextManager]:
        return nullcontext(), _keep_bn_stats(list(self.ops.modules()))

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
        batched (bool, optional): Node-batched cells (:mod:`gasgnn.supernet_batched`: every op once per
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
            from gasgnn.supernet_batched import BatchedSearchCell as Cell  # it imports this module
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
