"""What a guide did in its last forward: attention entropy, distinct arg-max sources, update ratio.

Three numbers per epoch tell a healthy guide from a collapsed one (docs/ggm.md, "A guide that shares
between slots"):

- ``guide_attention_entropy``: mean normalised entropy of the attention rows (1 uniform, 0 one-hot);
- ``guide_distinct_sources``: for each cell, how many distinct source slots are the arg-max of its
  slots' attention rows, averaged over cells (``E`` when every slot reads its own source, 1 when every
  slot reads the same *hub*);
- ``guide_update_ratio``: ``||alpha' - alpha|| / ||alpha||`` (above 1, alpha' is mostly the guide's).

:meth:`gasgnn.ggm.Guide.diagnostics` returns them for the built-in guides; :func:`guide_diagnostics` for
any module.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

__all__ = ["DIAGNOSTICS", "attention_diagnostics", "attention_entropy", "distinct_sources", "guide_diagnostics",
           "update_ratio"]

#: The diagnostic names, in the order of their ``metrics.csv`` columns (the distinct sources came last).
DIAGNOSTICS = ("guide_attention_entropy", "guide_update_ratio", "guide_distinct_sources")


def _rows(att: Tensor) -> Tensor:
    """``[edges]`` weights from ``[edges]`` or ``[edges, heads]`` (heads averaged)."""
    return att.detach().float().reshape(att.size(0), -1).mean(dim=1)


def attention_entropy(attention: list[tuple[Tensor, Tensor]], num_nodes: int) -> float:
    """Mean normalised entropy of the attention rows: 1 is uniform, 0 one-hot.

    A row is the weights :math:`A_{i\\cdot}` of one target node over its incoming edges; its entropy is
    divided by ``log(in-degree)``. Nodes with fewer than two incoming edges have no choice and are left
    out.

    Args:
        attention (list): ``(edge_index, A)`` per attention layer (e.g. ``guide.attention()``); ``A`` is
            ``[edges]`` or ``[edges, heads]`` (heads are averaged).
        num_nodes (int): Nodes of the graph.

    Returns:
        float: the mean over rows and layers, NaN when there is no row.
    """
    values = []
    for edge_index, att in attention:
        att = _rows(att)
        dst = edge_index[1].to(att.device)
        ent = scatter(-att * att.clamp_min(1e-30).log(), dst, dim=0, dim_size=num_nodes, reduce="sum")
        deg = scatter(torch.ones_like(att), dst, dim=0, dim_size=num_nodes, reduce="sum")
        rows = deg >= 2
        if rows.any():
            values.append(ent[rows] / deg[rows].log())
    return float(torch.cat(values).mean()) if values else float("nan")


def distinct_sources(attention: list[tuple[Tensor, Tensor]], num_nodes: int, nodes_per_cell: int) -> float:
    """Distinct arg-max sources per cell: for every target node its strongest incoming edge's source,
    then per cell (``node // nodes_per_cell``) the number of distinct such sources; the mean over cells.

    Only nodes with at least two incoming edges count (a single edge is no choice); a cell without such
    nodes is left out. Ties go to the lowest source index.

    Args:
        attention (list): ``(edge_index, A)`` per attention layer; ``A`` is ``[edges]`` or
            ``[edges, heads]`` (heads are averaged).
        num_nodes (int): Nodes of the graph.
        nodes_per_cell (int): Nodes of one cell (``E`` for the ArchGraph's slot nodes).

    Returns:
        float: the mean over cells and layers, NaN when there is no attention row.
    """
    values = []
    for edge_index, att in attention:
        att = _rows(att)
        src, dst = edge_index[0].to(att.device), edge_index[1].to(att.device)
        deg = scatter(torch.ones_like(att), dst, dim=0, dim_size=num_nodes, reduce="sum")
        best = scatter(att, dst, dim=0, dim_size=num_nodes, reduce="max")
        # The arg-max edge of each row: among the edges reaching the row's maximum, the lowest source.
        hit = att >= best[dst]
        big = torch.full((num_nodes,), num_nodes, dtype=src.dtype, device=src.device)
        arg = big.scatter_reduce(0, dst[hit], src[hit], reduce="amin")
        rows = (deg >= 2).nonzero().flatten()
        if not rows.numel():
            continue
        cells = rows // nodes_per_cell
        pairs = torch.unique(torch.stack([cells, arg[rows]]), dim=1)  # (cell, source) pairs, once each
        counts = torch.bincount(pairs[0])
        values.append(counts[torch.unique(cells)].float())
    return float(torch.cat(values).mean()) if values else float("nan")


def update_ratio(alpha: Tensor, alpha_p: Tensor) -> float:
    """``||alpha' - alpha|| / ||alpha||`` (Frobenius norms)."""
    a = alpha.detach().float()
    return float((alpha_p.detach().float() - a).norm() / a.norm().clamp_min(1e-30))


@torch.no_grad()
def attention_diagnostics(attention: list[tuple[Tensor, Tensor]], alpha: Tensor, alpha_p: Tensor,
                          nodes_per_cell: int | None) -> dict[str, float]:
    """The three :data:`DIAGNOSTICS` from a forward's attention and its alpha, alpha'.

    Args:
        attention (list): ``(edge_index, A)`` per attention layer (empty: no attention, NaN entropy and
            sources).
        alpha (Tensor): alpha ``[N, K]``.
        alpha_p (Tensor): alpha' ``[N, K]``.
        nodes_per_cell (int, optional): Nodes per cell; :obj:`None` leaves the sources NaN.

    Returns:
        dict: ``{name: value}`` for every name of :data:`DIAGNOSTICS`.
    """
    n = alpha.size(0)
    ent = attention_entropy(attention, n) if attention else float("nan")
    src = distinct_sources(attention, n, nodes_per_cell) if attention and nodes_per_cell else float("nan")
    return {"guide_attention_entropy": ent, "guide_update_ratio": update_ratio(alpha, alpha_p),
            "guide_distinct_sources": src}


def guide_diagnostics(guide: nn.Module, alpha: Tensor, alpha_p: Tensor) -> dict[str, float]:
    """The :data:`DIAGNOSTICS` of any guide after the forward that computed ``alpha_p`` from ``alpha``.

    A guide with a ``diagnostics(alpha, alpha_p)`` method (every :class:`gasgnn.ggm.Guide`) answers
    itself; for another module the attention comes from its ``attention()`` method when it has one, and
    the distinct sources need its ``space`` attribute (else NaN).

    Args:
        guide (nn.Module): The guide.
        alpha (Tensor): alpha.
        alpha_p (Tensor): alpha'.

    Returns:
        dict: ``{name: value}`` for every name of :data:`DIAGNOSTICS`.
    """
    if callable(getattr(guide, "diagnostics", None)):
        return guide.diagnostics(alpha, alpha_p)
    att = guide.attention() if callable(getattr(guide, "attention", None)) else []
    space = getattr(guide, "space", None)
    return attention_diagnostics(att, alpha, alpha_p, getattr(space, "edges_per_cell", None))
