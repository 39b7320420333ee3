"""The supernet: MixedOp, SearchCell and Supernet (DARTS-style, cell-independent).

Every cell owns its weights and its rows of alpha; nothing is shared between cells. The supernet's
``forward`` takes the alpha tensor aligned with the ArchGraph nodes, so a graph-guided module can hand
in alpha' instead of the raw parameters.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gasgnn.heads import build_head
from gasgnn.kernels import mixed_sum
from gasgnn.ops import FactorizedReduce, ReLUConvBN, Stem, build_op, get_op
from gasgnn.space import SearchSpace, SpaceError


def cell_preprocess(
    C_pp: int, C_p: int, C: int, reduction_prev: bool, affine: bool = True
) -> tuple[nn.Module, nn.Module]:
    """The two input adapters of a cell (DARTS): bring cells ``k-2`` and ``k-1`` to ``C`` channels and one
    resolution (``k-2`` is one reduction behind when cell ``k-1`` reduced)."""
    pre0 = FactorizedReduce(C_pp, C, affine=affine) if reduction_prev else ReLUConvBN(C_pp, C, 1, 1, 0, affine=affine)
    return pre0, ReLUConvBN(C_p, C, 1, 1, 0, affine=affine)


class MixedOp(nn.Module):
    """All candidate ops on one edge, combined as ``sum_k w_k * op_k(x)``.

    ``none`` contributes exactly zero, so it is skipped rather than computed.

    Args:
        C (int): Channels.
        stride (int): 1 or 2.
        ops (sequence of str): Candidate op names (the columns of alpha).
    """

    def __init__(self, C: int, stride: int, ops: Sequence[str]) -> None:
        super().__init__()
        self.op_names = tuple(ops)
        self.active = [k for k, o in enumerate(self.op_names) if o != "none"]
        mods = []
        for k in self.active:
            op = build_op(self.op_names[k], C, stride, affine=False)
            if not get_op(self.op_names[k]).parametric and self.op_names[k] != "skip_connect":
                # DARTS: normalise parameter-free pooling so its scale matches the conv ops'.
                op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
            mods.append(op)
        self.ops = nn.ModuleList(mods)
        self.register_buffer("_active_idx", torch.tensor(self.active, dtype=torch.long), persistent=False)

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        """
        Args:
            x (Tensor): ``[N, C, H, W]``.
            weights (Tensor): ``[K]``, typically ``softmax(alpha_row)``.

        Returns:
            Tensor: ``[N, C, H/stride, W/stride]``.
        """
        ys = [op(x) for op in self.ops]
        return mixed_sum(ys, weights.index_select(0, self._active_idx))


class SearchCell(nn.Module):
    """A search cell: ``num_nodes`` intermediate nodes, each the sum of mixed ops on all earlier nodes.

    Edges are stored in ArchGraph order (by destination, then source), so row ``e`` of the cell's
    weights drives ``edges[e]``.
    """

    def __init__(
        self, space: SearchSpace, C_pp: int, C_p: int, C: int, reduction: bool, reduction_prev: bool
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.num_nodes = space.num_nodes
        self.pre0, self.pre1 = cell_preprocess(C_pp, C_p, C, reduction_prev, affine=False)
        self.edges = nn.ModuleList(
            MixedOp(C, 2 if reduction and src < 2 else 1, space.ops) for src, _ in space.cell_edges()
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

    Shapes:
        - **input:** images ``[N, in_channels, H, W]``, alpha ``[num_cells * E, K]`` (optional)
        - **output:** logits ``[N, num_classes, H, W]``
    """

    def __init__(self, space: SearchSpace, head: str = "simple", head_channels: int = 64) -> None:
        super().__init__()
        self.space = space
        self.stem = Stem(space.in_channels, space.stem_channels, num_convs=space.stem_stride.bit_length() - 1)
        C_pp = C_p = space.stem_channels
        cells, red_prev = [], False
        for k, C in enumerate(space.cell_channels()):
            red = space.is_reduction(k)
            cells.append(SearchCell(space, C_pp, C_p, C, red, red_prev))
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
