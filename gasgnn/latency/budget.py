"""Genotypes under a latency budget: walk a derived network down the table until it fits a target.

Two walks share one mechanism. Each step gives one kept edge an op that the table says is cheaper on
that edge (the table is additive over edges, so the step lowers the prediction by the row difference):

- :func:`derive_under_latency` picks the step that gives up the least architecture weight per millisecond
  saved (a greedy knapsack on ``log softmax(alpha)``), so a search's alpha decides what is cut first. It
  puts every searched network at one latency, where the supplement's op statistics can be compared.
- :func:`lighten` picks a uniformly random step: random search's sampler for targets below what uniform
  samples reach (:func:`gasgnn.search.sample_under_target`).

The kept edges (which inputs each node takes) never change; only their ops do.

For validation, :func:`extreme_genotype` gives the lightest and the heaviest network derivable from a space
(the ends of its latency range), and :func:`draw_near` a random network the table predicts just under a
target: random kept inputs, every kept edge first given its costliest op, then :func:`lighten`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from gasgnn.genotype import CellGenotype, Genotype, allowed_columns, derive, random_genotype
from gasgnn.latency.keys import LatencyTableError
from gasgnn.latency.table import LatencyTable
from gasgnn.space import SearchSpace, SpaceError

#: A step: (cell, edge index in the cell, ArchGraph node of the edge, its current op column, new op column).
Move = tuple[int, int, int, int, int]
#: Picks one of the moves, given the per-node costs ``[N, K]`` (ms of each op on each ArchGraph node).
Chooser = Callable[[list[Move], Tensor], Move]


def _node_of(space: SearchSpace) -> Callable[[int, int, int], int]:
    """``(cell, src, dst) -> ArchGraph node``: the row of that edge in ``alpha`` and the per-node costs."""
    E, slot = space.edges_per_cell, {se: i for i, se in enumerate(space.cell_edges())}
    return lambda c, s, d: c * E + slot[(s, d)]


def _walk_down(
    g: Genotype, table: LatencyTable, target_ms: float, choose: Chooser,
    head: str, head_channels: int, max_rounds: int, usable: list[int],
) -> tuple[Genotype, float] | None:
    """Applies ``choose``'s step (to an op column in ``usable``) until the exact prediction is at most
    ``target_ms``; :obj:`None` when no edge can get cheaper first."""
    space = g.space
    pred = float(table.predict(g, head=head, head_channels=head_channels))
    if pred <= target_ms:
        return g, pred
    rows = table.for_space(space, head=head, head_channels=head_channels).rows
    node, col = _node_of(space), {o: k for k, o in enumerate(space.ops)}
    cells = [list(c.edges) for c in g.cells]
    for _ in range(max_rounds):
        gap = pred - target_ms
        while gap > 0:
            moves = [(c, e, n, j, k) for c, edges in enumerate(cells) for e, (s, d, o) in enumerate(edges)
                     for n, j in [(node(c, s, d), col[o])] for k in usable if rows[n, k] < rows[n, j]]
            if not moves:
                return None
            c, e, n, j, k = choose(moves, rows)
            gap -= float(rows[n, j] - rows[n, k])
            s, d, _ = cells[c][e]
            cells[c][e] = (s, d, space.ops[k])
        g = Genotype(tuple(dataclasses.replace(cell, edges=tuple(edges)) for cell, edges in zip(g.cells, cells)),
                     space)
        # exact, with any whole-network calibration the raw row sum leaves out; if that is still over, go on
        pred = float(table.predict(g, head=head, head_channels=head_channels))
        if pred <= target_ms:
            return g, pred
    return None


def lighten(
    genotype: Genotype, table: LatencyTable, target_ms: float, head: str = "aspp", head_channels: int = 128,
    generator: torch.Generator | None = None, max_rounds: int = 20,
) -> tuple[Genotype, float] | None:
    """A random walk down in latency: a uniformly chosen kept edge gets a uniformly chosen op that is
    cheaper on it, until the table's prediction is at most ``target_ms``.

    Args:
        genotype (Genotype): The start (it carries its space).
        table (LatencyTable): Per-edge costs and the prediction.
        target_ms (float): The latency bound.
        head (str, optional): Head of the prediction. (default: :obj:`"aspp"`)
        head_channels (int, optional): Head width. (default: :obj:`128`)
        generator (torch.Generator, optional): Source of randomness.
        max_rounds (int, optional): Exact predictions at most. (default: :obj:`20`)

    Returns:
        (Genotype, float) or None: the network and its predicted latency, or :obj:`None` when every kept
        edge already has its cheapest op and the prediction is still over ``target_ms``.
    """
    def choose(moves: list[Move], rows: Tensor) -> Move:
        return moves[int(torch.randint(len(moves), (1,), generator=generator))]

    return _walk_down(genotype, table, target_ms, choose, head, head_channels, max_rounds,
                      allowed_columns(genotype.space))


def derive_under_latency(
    space: SearchSpace, alpha: Tensor, table: LatencyTable, target_ms: float, genotype: Genotype | None = None,
    head: str = "aspp", head_channels: int = 128, max_rounds: int = 20, ops: Sequence[str] | None = None,
) -> tuple[Genotype, float]:
    """Derives from ``alpha`` the network that fits ``target_ms``, giving up as little weight as it can.

    Starts from ``genotype`` (the plain :func:`~gasgnn.genotype.derive` result when :obj:`None`). While the
    prediction is over the target, one kept edge of op ``o`` on ArchGraph node ``n`` moves to a cheaper op
    ``k``: the move with the smallest ``(log p[n, o] - log p[n, k]) / (ms[n, o] - ms[n, k])``, where ``p``
    is ``softmax(alpha)`` over the non-``none`` ops. A network already under the target is returned as is.

    Args:
        space (SearchSpace): The space ``alpha`` belongs to.
        alpha (Tensor): Architecture parameters (or a guide's alpha'), ``[num_cells * E, K]``.
        table (LatencyTable): Per-edge costs and the prediction.
        target_ms (float): The latency bound (ms).
        genotype (Genotype, optional): The start. (default: :obj:`None`)
        head (str, optional): Head of the prediction. (default: :obj:`"aspp"`)
        head_channels (int, optional): Head width. (default: :obj:`128`)
        max_rounds (int, optional): Exact predictions at most. (default: :obj:`20`)
        ops (sequence of str, optional): The ops the network may use, a subset of ``space.ops`` (the
            start derived with them, every step to one of them); :obj:`None`: all. (default: :obj:`None`)

    Returns:
        (Genotype, float): the network and its predicted latency (at most ``target_ms``).

    Raises:
        LatencyTableError: if ``alpha``'s shape does not match ``space``, or ``target_ms`` is below the
            lightest network with the start's kept edges (the message gives that latency).
        SpaceError: if ``ops`` are not ops of ``space``, or ``genotype`` uses an op outside ``ops``.
    """
    if tuple(alpha.shape) != (space.num_arch_nodes, space.num_ops):
        raise LatencyTableError(f"derive_under_latency: alpha has shape {tuple(alpha.shape)}, expected "
                                f"[{space.num_arch_nodes}, {space.num_ops}]")
    usable = allowed_columns(space, ops)
    g = genotype if genotype is not None else derive(space, alpha, ops=ops)
    g = g if g.space is not None else Genotype(g.cells, space)
    outside = sorted({o for o in g.ops() if space.ops.index(o) not in usable}) if ops is not None else []
    if outside:
        raise SpaceError(f"derive_under_latency: the start genotype uses {outside}, outside ops {list(ops)}")
    logp = _log_weights(space, alpha)

    def choose(moves: list[Move], rows: Tensor) -> Move:
        def cost(m: Move) -> float:  # weight given up per ms saved
            _, _, n, j, k = m
            return float(logp[n, j] - logp[n, k]) / float(rows[n, j] - rows[n, k])

        return min(moves, key=cost)  # the first of equal costs, as the moves are ordered

    out = _walk_down(g, table, target_ms, choose, head, head_channels, max_rounds, usable)
    if out is None:
        floor = lightest(g, table, head, head_channels, ops)
        raise LatencyTableError(f"derive_under_latency: target {target_ms:.3f} ms is below the lightest network "
                                f"with these kept edges ({floor:.3f} ms predicted)")
    return out


def _extreme_ops(genotype: Genotype, table: LatencyTable, heaviest: bool, head: str, head_channels: int,
                 ops: Sequence[str] | None = None) -> Genotype:
    """``genotype`` with every kept edge given its cheapest (or costliest) non-``none`` op (of ``ops`` when
    given)."""
    space = genotype.space
    rows = table.for_space(space, head=head, head_channels=head_channels).rows
    node, pick = _node_of(space), (max if heaviest else min)
    usable = allowed_columns(space, ops)
    cells = []
    for c, cell in enumerate(genotype.cells):
        edges = []
        for s, d, _ in cell.edges:
            row = rows[node(c, s, d)]
            edges.append((s, d, space.ops[pick(usable, key=lambda k, row=row: float(row[k]))]))
        cells.append(dataclasses.replace(cell, edges=tuple(edges)))
    return Genotype(tuple(cells), space)


def lightest(
    genotype: Genotype, table: LatencyTable, head: str = "aspp", head_channels: int = 128,
    ops: Sequence[str] | None = None,
) -> float:
    """The predicted latency (ms) of ``genotype`` with every kept edge given its cheapest non-``none`` op
    (of ``ops`` when given)."""
    g = _extreme_ops(genotype, table, False, head, head_channels, ops)
    return float(table.predict(g, head=head, head_channels=head_channels))


def extreme_genotype(space: SearchSpace, table: LatencyTable, heaviest: bool = False, head: str = "aspp",
                     head_channels: int = 128, kept: int = 2) -> Genotype:
    """The lightest (or the heaviest) network derivable from ``space`` by the table's prediction: every
    node keeps the ``kept`` inputs whose cheapest (costliest) non-``none`` op is cheapest (costliest), with
    that op. The table is additive over edges, so this is the exact minimum (maximum).

    Args:
        space (SearchSpace): The space (its ``input_size`` is the prediction's).
        table (LatencyTable): Covers ``space`` for ``head``.
        heaviest (bool, optional): The heaviest instead of the lightest. (default: :obj:`False`)
        head (str, optional): Head of the prediction. (default: :obj:`"aspp"`)
        head_channels (int, optional): Head width. (default: :obj:`128`)
        kept (int, optional): Inputs per node. (default: :obj:`2`)

    Returns:
        Genotype: the network (it carries ``space``).
    """
    rows = table.for_space(space, head=head, head_channels=head_channels).rows
    node, pick = _node_of(space), (max if heaviest else min)
    usable = [k for k, o in enumerate(space.ops) if o != "none"]
    chans, cells = space.cell_channels(), []
    for c in range(space.num_cells):
        edges = []
        for d in range(2, space.num_nodes + 2):
            best = []
            for s in (s for s, dd in space.cell_edges() if dd == d):
                row = rows[node(c, s, d)]
                k = pick(usable, key=lambda k, row=row: float(row[k]))
                best.append((float(row[k]), s, k))
            best.sort(key=lambda t: -t[0] if heaviest else t[0])
            edges += [(s, d, space.ops[k]) for _, s, k in sorted(best[: min(kept, d)], key=lambda t: t[1])]
        cells.append(CellGenotype(tuple(edges), space.is_reduction(c), chans[c], space.num_nodes))
    return Genotype(tuple(cells), space)


def draw_near(
    space: SearchSpace, table: LatencyTable, target_ms: float, generator: torch.Generator | None = None,
    head: str = "aspp", head_channels: int = 128, tol: float = 0.05, tries: int = 20,
) -> tuple[Genotype, float]:
    """A random network the table predicts just under ``target_ms``, as a search's candidates under a
    budget are: random kept inputs (:func:`~gasgnn.genotype.random_genotype`), every kept edge first given
    its costliest op, then random cheaper ops (:func:`lighten`) until it fits.

    Returns the first draw within ``[(1 - tol) * target_ms, target_ms]``; after ``tries`` draws without
    one, the draw closest to the target (for a target outside the space's range: the nearest end).

    Args:
        space (SearchSpace): The space (its ``input_size`` is the prediction's).
        table (LatencyTable): Covers ``space`` for ``head``.
        target_ms (float): The target latency.
        generator (torch.Generator, optional): Source of randomness.
        head (str, optional): Head of the prediction. (default: :obj:`"aspp"`)
        head_channels (int, optional): Head width. (default: :obj:`128`)
        tol (float, optional): Accepted shortfall below the target. (default: :obj:`0.05`)
        tries (int, optional): Draws at most. (default: :obj:`20`)

    Returns:
        (Genotype, float): the network and its predicted latency.
    """
    best: tuple[Genotype, float] | None = None
    for _ in range(max(1, tries)):
        heavy = _extreme_ops(random_genotype(space, generator), table, True, head, head_channels)
        out = lighten(heavy, table, target_ms, head, head_channels, generator)
        if out is None:  # even its cheapest ops are over the target: its lightest version is the nearest
            g = _extreme_ops(heavy, table, False, head, head_channels)
            out = (g, float(table.predict(g, head=head, head_channels=head_channels)))
        if best is None or abs(out[1] - target_ms) < abs(best[1] - target_ms):
            best = out
        if (1 - tol) * target_ms <= out[1] <= target_ms:
            return out
    return best


def _log_weights(space: SearchSpace, alpha: Tensor) -> Tensor:
    """``log softmax(alpha)`` over the non-``none`` columns (``none`` gets ``-inf``), ``[N, K]``."""
    a = alpha.detach().float().clone()
    if "none" in space.ops:
        a[:, space.ops.index("none")] = float("-inf")
    return torch.log_softmax(a, dim=-1)
