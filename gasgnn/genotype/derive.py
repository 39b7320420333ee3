"""Derivation: from architecture parameters alpha (or alpha') to a discrete :class:`Genotype`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import scatter

from gasgnn.genotype.genotype import CellGenotype, Genotype
from gasgnn.space import SearchSpace, SpaceError


def allowed_columns(space: SearchSpace, ops: Sequence[str] | None = None) -> list[int]:
    """The alpha columns a derived network may use: the non-``none`` ops of ``space``, or of ``ops``.

    Args:
        space (SearchSpace): The search space.
        ops (sequence of str, optional): A subset of ``space.ops`` to derive with (e.g. ops the target
            device runs well); :obj:`None` allows them all. (default: :obj:`None`)

    Raises:
        SpaceError: naming an op outside ``space.ops``, or when no op other than ``none`` is left.
    """
    if ops is None:
        ops = space.ops
    outside = [o for o in ops if o not in space.ops and o != "none"]  # none is never derived anyway
    if outside:
        raise SpaceError(f"ops {outside} are not in the space's ops {list(space.ops)}")
    cols = [k for k, o in enumerate(space.ops) if o in ops and o != "none"]
    if not cols:
        raise SpaceError(f"ops {list(ops)}: a derived network needs an op other than 'none'")
    return cols


def edge_strengths(space: SearchSpace, alpha: Tensor, ops: Sequence[str] | None = None) -> tuple[Tensor, Tensor]:
    """Per ArchGraph node: the largest weight of ``softmax(alpha)`` over the allowed ops (non-none; only
    ``ops`` when given, see :func:`allowed_columns`) and its op column.

    Args:
        space (SearchSpace): The search space.
        alpha (Tensor): ``[num_cells * E, K]``.
        ops (sequence of str, optional): The ops that may be chosen. (default: :obj:`None`, all)

    Returns:
        (Tensor, Tensor): strengths ``[num_cells * E]`` and best op indices ``[num_cells * E]``.
    """
    w = torch.softmax(alpha.detach().float(), dim=-1)
    cols = allowed_columns(space, ops)
    if len(cols) < space.num_ops:
        w = w.clone()
        w[:, [k for k in range(space.num_ops) if k not in cols]] = -1.0
    return w.max(dim=-1)


def op_entropy(alpha: Tensor) -> Tensor:
    """Entropy (nats) of ``softmax(alpha)`` per ArchGraph node; ``log K`` is uniform, 0 one-hot.

    Args:
        alpha (Tensor): ``[..., K]``.

    Returns:
        Tensor: ``[...]``.
    """
    p = torch.softmax(alpha.detach().float(), dim=-1)
    return -(p * p.clamp_min(1e-12).log()).sum(-1)


def derive(
    space: SearchSpace, alpha: Tensor, k: int = 2, graph: Data | None = None, distinct_inputs: bool = True,
    ops: Sequence[str] | None = None,
) -> Genotype:
    """Derives a cell-heterogeneous genotype with the DARTS rule, every cell on its own.

    For every intermediate node of every cell, keeps the ``k`` incoming edges with the largest
    non-none weight of ``softmax(alpha)`` (ties go to the earlier source), and on each the strongest
    non-none op. With ``distinct_inputs=False`` it keeps the ``k`` strongest ``(input, op)`` pairs
    instead, so a node may take two ops from one input (a multi-edge, as in NASNet and AmoebaNet).

    Args:
        space (SearchSpace): The search space alpha belongs to.
        alpha (Tensor): Architecture parameters (or alpha' from a guidance module),
            ``[num_cells * E, K]``.
        k (int, optional): Kept inputs per intermediate node. (default: :obj:`2`)
        graph (Data, optional): The ArchGraph (node attributes ``cell``, ``src``, ``dst``); built from
            ``space`` when :obj:`None`. (default: :obj:`None`)
        distinct_inputs (bool, optional): Keep ``k`` different inputs per node (DARTS); :obj:`False`
            ranks ``(input, op)`` pairs and allows multi-edges. (default: :obj:`True`)
        ops (sequence of str, optional): Derive with these ops of ``space`` only (the others are ranked
            as ``none`` is); :obj:`None` uses every op. (default: :obj:`None`)

    Returns:
        Genotype: the derived network, carrying ``space``.
    """
    if tuple(alpha.shape) != (space.num_arch_nodes, space.num_ops):
        raise SpaceError(
            f"derive: alpha has shape {tuple(alpha.shape)}, expected [{space.num_arch_nodes}, {space.num_ops}]"
        )
    if not torch.isfinite(alpha).all():
        raise ValueError("derive: alpha contains NaN or inf")
    g = graph if graph is not None else space.arch_graph(alpha.detach())
    if not distinct_inputs:
        return _derive_pairs(space, alpha, k, g, ops)
    strength, best = edge_strengths(space, alpha, ops)
    # One group per (cell, dst): rank edges inside the group by strength (stable: earlier src wins ties).
    num_dst = space.num_nodes
    group = g.cell * num_dst + (g.dst - 2)
    order = torch.argsort(strength, descending=True, stable=True)
    order = order[torch.argsort(group[order], stable=True)]
    # Rank of each edge inside its group, in that order.
    counts = scatter(torch.ones_like(group), group, dim=0, dim_size=space.num_cells * num_dst, reduce="sum")
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(order.numel()) - starts[group[order]]
    keep = order[rank < k]
    keep = keep[torch.argsort(keep)]  # back to ArchGraph order (by dst, then src)

    chans = space.cell_channels()
    edges: list[list[tuple[int, int, str]]] = [[] for _ in range(space.num_cells)]
    for n in keep.tolist():
        edges[int(g.cell[n])].append((int(g.src[n]), int(g.dst[n]), space.ops[int(best[n])]))
    cells = tuple(
        CellGenotype(tuple(edges[c]), space.is_reduction(c), chans[c], space.num_nodes)
        for c in range(space.num_cells)
    )
    return Genotype(cells, space)


def _derive_pairs(space: SearchSpace, alpha: Tensor, k: int, g: Data, allowed: Sequence[str] | None) -> Genotype:
    """The ``k`` strongest allowed ``(input, op)`` pairs per node (ties: earlier input, then earlier op)."""
    w = torch.softmax(alpha.detach().float(), dim=-1)
    ops = allowed_columns(space, allowed)
    chans = space.cell_channels()
    edges: list[list[tuple[int, int, str]]] = [[] for _ in range(space.num_cells)]
    cell, src, dst = g.cell.tolist(), g.src.tolist(), g.dst.tolist()
    groups: dict[tuple[int, int], list[int]] = {}
    for n in range(len(cell)):
        groups.setdefault((cell[n], dst[n]), []).append(n)
    for (c, d), nodes in sorted(groups.items()):
        pairs = [(-float(w[n, j]), src[n], j) for n in nodes for j in ops]
        kept = sorted(sorted(pairs)[:k], key=lambda p: (p[1], p[2]))  # back to input order
        edges[c] += [(s, d, space.ops[j]) for _, s, j in kept]
    cells = tuple(
        CellGenotype(tuple(edges[c]), space.is_reduction(c), chans[c], space.num_nodes)
        for c in range(space.num_cells)
    )
    return Genotype(cells, space)
