"""The differentiable expected latency: a :class:`~gasgnn.latency.LatencyTable` compiled for one search
space into a per-node LUT (:class:`SpaceLatency`), and :func:`expected_latency`.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor
from torch_geometric.utils import scatter

from gasgnn.latency.keys import LatencyKey, LatencyTableError, MissingEntriesError
from gasgnn.latency.measure import space_plans, walk

__all__ = ["LatencyTableLike", "SpaceLatency", "compile_lut", "expected_latency"]


class LatencyTableLike(Protocol):
    """What this module needs of a :class:`~gasgnn.latency.LatencyTable` (which builds on this module)."""

    dtype: str
    batch: int

    def __getitem__(self, key: LatencyKey) -> float: ...

    def missing(self, keys: Any) -> list[LatencyKey]: ...

    def expected_latency(self, graph: Any, alpha: Tensor | None = None, **kwargs: Any) -> tuple[Tensor, Tensor]: ...


def compile_lut(table: LatencyTableLike, space: Any, graph: Any, attrs: Tensor, head: str, head_channels: int,
                kept: int,
                scale_edges: bool, exclude_none: bool = False) -> SpaceLatency:
    """Compiles ``table`` for one search space (used by :meth:`LatencyTable.for_space`, which caches it).

    Args:
        table (LatencyTable): The measured table.
        space (SearchSpace): The space.
        graph (Data): Its ArchGraph.
        attrs (Tensor): ``[6, N]`` node attributes stride, channels, height, width, cell, dst (CPU).
        head (str): Head of the derived network.
        head_channels (int): Head width.
        kept (int): Inputs per node kept by derivation.
        scale_edges (bool): See :meth:`LatencyTable.for_space`.
        exclude_none (bool, optional): See :meth:`LatencyTable.for_space`. (default: :obj:`False`)

    Returns:
        SpaceLatency: the per-node LUT and constants.

    Raises:
        LatencyTableError: if the graph does not belong to the space.
        MissingEntriesError: if the table lacks entries the space needs.
    """
    ref = space.arch_graph(torch.zeros(space.num_arch_nodes, space.num_ops))
    for i, name in enumerate(("stride", "channels", "height", "width", "cell", "dst")):
        if not torch.equal(attrs[i], getattr(ref, name)):
            raise LatencyTableError(
                f"ArchGraph node attribute '{name}' does not match the space (a graph built for another "
                f"space, or for an input size other than {tuple(space.input_size)}?)"
            )
    ops = list(graph.op_names)
    shapes = [tuple(r) for r in attrs[:4].t().tolist()]
    keys = {(o, s): LatencyKey("op", (o, s[1], s[0], s[2], s[3]), table.dtype, table.batch)
            for s in set(shapes) for o in ops}
    const_keys = list(walk(space, space_plans(space, kept), space.input_size, head, head_channels,
                           table.dtype, table.batch))
    const_keys = [(k, c) for k, c in const_keys if k.kind != "op"]
    missing = table.missing(list(keys.values()) + [k for k, _ in const_keys])
    if missing:
        raise MissingEntriesError(missing, f" for this search space at {space.input_size}")
    rows = torch.tensor([[table[keys[(o, s)]] for o in ops] for s in shapes], dtype=torch.float64)
    if scale_edges:
        dst = attrs[5].to(torch.float64)
        rows = rows * (dst.clamp(max=kept) / dst).unsqueeze(-1)
    cell_const = torch.zeros(space.num_cells, dtype=torch.float64)
    const = 0.0
    for k, c in const_keys:
        if c < 0:
            const += table[k]
        else:
            cell_const[c] += table[k]
    exclude = torch.tensor([exclude_none and o == "none" for o in ops])
    return SpaceLatency(rows, attrs[4].clone(), cell_const, const, exclude if exclude.any() else None)


class SpaceLatency:
    """A latency table compiled for one search space: per-node LUT rows and constant costs.

    Args:
        rows (Tensor): ``[N, K]`` latency (ms) of each op at each ArchGraph node.
        cell (Tensor): ``[N]`` cell index of each node.
        cell_const (Tensor): ``[num_cells]`` fixed cost of each cell (pre-processing, sums, concat).
        const (float): Stem, head and upsampling.
        exclude (Tensor, optional): ``[K]`` bool, op columns left out of the softmax (``none`` for a
            derived-network estimate). (default: :obj:`None`)

    Shapes:
        - **input:** alpha ``[N, K]``
        - **output:** total ``[]``, per cell ``[num_cells]`` (ms)
    """

    def __init__(
        self, rows: Tensor, cell: Tensor, cell_const: Tensor, const: float, exclude: Tensor | None = None
    ) -> None:
        self.rows, self.cell, self.cell_const, self.const = rows, cell, cell_const, float(const)
        self.exclude = exclude
        self._cast: dict[tuple, tuple[Tensor, Tensor, Tensor, Tensor | None]] = {}

    @property
    def num_cells(self) -> int:
        return self.cell_const.numel()

    def __call__(self, alpha: Tensor) -> tuple[Tensor, Tensor]:
        if tuple(alpha.shape) != tuple(self.rows.shape):
            raise LatencyTableError(f"alpha has shape {tuple(alpha.shape)}, the LUT {tuple(self.rows.shape)}")
        ck = (alpha.device, alpha.dtype)
        if ck not in self._cast:
            self._cast[ck] = (self.rows.to(alpha.device, alpha.dtype), self.cell.to(alpha.device),
                              self.cell_const.to(alpha.device, alpha.dtype),
                              None if self.exclude is None else self.exclude.to(alpha.device))
        rows, cell, cell_const, exclude = self._cast[ck]
        if exclude is not None:  # -inf before the softmax renormalises over the remaining ops
            alpha = alpha.masked_fill(exclude, float("-inf"))
        per_node = (torch.softmax(alpha, dim=-1) * rows).sum(dim=-1)
        per_cell = scatter(per_node, cell, dim=0, dim_size=self.num_cells, reduce="sum") + cell_const
        return per_cell.sum() + self.const, per_cell

    def __repr__(self) -> str:
        return f"SpaceLatency(nodes={self.rows.size(0)}, ops={self.rows.size(1)}, cells={self.num_cells})"


def expected_latency(
    graph: Any, alpha: Tensor | None = None, *, table: LatencyTableLike, space: Any = None, head: str = "aspp",
    head_channels: int = 128, kept: int = 2, scale_edges: bool = False, exclude_none: bool = False,
) -> tuple[Tensor, Tensor]:
    """Differentiable expected latency (ms) of the supernet:
    :math:`c_0 + \\sum_k (c_k + \\sum_{n \\in k} \\mathrm{softmax}(\\alpha_n) \\cdot \\mathrm{LUT}_n)`.

    Args:
        graph (Data): The ArchGraph (node attributes ``stride``, ``channels``, ``height``, ``width``,
            ``cell``, ``dst``).
        alpha (Tensor, optional): ``[N, K]`` (e.g. alpha' from the GGM); :obj:`None` uses ``graph.x``.
            (default: :obj:`None`)
        table (LatencyTable): The measured table.
        space (SearchSpace, optional): For the constant parts; :obj:`None` uses ``graph.space``.
            (default: :obj:`None`)
        head (str, optional): Head of the derived network. (default: :obj:`"aspp"`)
        head_channels (int, optional): Head width. (default: :obj:`128`)
        kept (int, optional): Inputs kept per node (node-sum constants). (default: :obj:`2`)
        scale_edges (bool, optional): Weigh edges by the fraction a derived network keeps
            (see :meth:`LatencyTable.for_space`). (default: :obj:`False`)
        exclude_none (bool, optional): Leave ``none`` out of the expectation (see
            :meth:`LatencyTable.for_space`). (default: :obj:`False`)

    Returns:
        (Tensor, Tensor): the total ``[]`` and the per-cell latency ``[num_cells]`` in ms (cell costs
        include their fixed parts; the total adds stem, head and upsampling).
    """
    return table.expected_latency(graph, alpha, space=space, head=head, head_channels=head_channels,
                                  kept=kept, scale_edges=scale_edges, exclude_none=exclude_none)
