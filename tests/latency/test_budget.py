"""Derivation under a latency budget: the alpha-guided walk and the random one share their mechanics."""

import pytest
import torch

from gasgnn import SearchSpace
from gasgnn.genotype import derive, reference_genotype
from gasgnn.latency import LatencyTable, LatencyTableError, derive_under_latency, lighten, lightest

COST = {"skip_connect": 0.01, "max_pool_3x3": 0.2, "sep_conv_3x3": 0.6}


@pytest.fixture(scope="module")
def space():
    return SearchSpace(num_cells=3, num_nodes=2, reduction_cells=(1,), channels=4, input_size=(32, 32), num_classes=9)


@pytest.fixture(scope="module")
def table(space):
    """A measured table whose op entries are replaced by fixed costs (skip cheapest, sep_conv 0.6, other
    convs 1.0; stride-2 ops twice), so what the walk cuts does not depend on the machine's noise."""
    t = LatencyTable.measure(space, repeats=1, warmup=0, progress=False, heads=("aspp",))
    for k, _ in t.items():
        if k.kind == "op":
            t[k] = COST.get(k.params[0], 1.0) * k.params[2]
    return t


def _alpha(space, favourite="sep_conv_3x3"):
    a = torch.zeros(space.num_arch_nodes, space.num_ops)
    a[:, space.ops.index(favourite)] = 3.0
    return a


def _ops(g):
    return [o for c in g.cells for _, _, o in c.edges]


def test_a_network_under_the_target_is_the_plain_derivation(space, table):
    alpha = _alpha(space)
    g, pred = derive_under_latency(space, alpha, table, 1e6)
    assert g.cells == derive(space, alpha).cells
    assert pred == pytest.approx(table.predict(derive(space, alpha)))


def test_the_edge_whose_alpha_holds_least_is_cut_first(space, table):
    alpha = _alpha(space)
    start = derive(space, alpha)
    # the last kept edge of the last cell nearly prefers skip; every other edge clearly prefers sep_conv
    s, d, _ = start.cells[-1].edges[-1]
    n = (space.num_cells - 1) * space.edges_per_cell + space.cell_edges().index((s, d))
    alpha[n, space.ops.index("skip_connect")] = 2.9
    pred0 = table.predict(start)
    g, pred = derive_under_latency(space, alpha, table, pred0 - 0.3, genotype=start)  # a swap saves 0.59
    assert pred <= pred0 - 0.3
    changed = [(a, b) for a, b in zip(_ops(start), _ops(g)) if a != b]
    assert changed == [("sep_conv_3x3", "skip_connect")]
    assert g.cells[-1].edges[-1] == (s, d, "skip_connect")
    # the kept inputs never change, only ops
    assert [(a, b) for c in g.cells for a, b, _ in c.edges] == [(a, b) for c in start.cells for a, b, _ in c.edges]


def test_a_tight_target_cuts_by_weight_given_up_per_ms(space, table):
    alpha = _alpha(space)
    start = derive(space, alpha)
    floor = lightest(start, table)
    target = 0.5 * (floor + table.predict(start))
    g, pred = derive_under_latency(space, alpha, table, target)
    assert floor <= pred <= target
    # with alpha alike on every edge, the stride-2 edges (twice the saving per move) go first
    strided = [space.is_reduction(c) and s < 2 for c, cell in enumerate(g.cells) for s, _, _ in cell.edges]
    cut = [o != "sep_conv_3x3" for o in _ops(g)]
    assert all(c for c, st in zip(cut, strided) if st)
    assert not all(cut)


def test_a_target_below_the_lightest_network_names_it(space, table):
    start = derive(space, _alpha(space))
    floor = lightest(start, table)
    # every kept edge a skip: the skip_only reference up to which inputs its nodes keep
    assert floor == pytest.approx(table.predict(reference_genotype("skip_only", space)), abs=0.05)
    assert floor < table.predict(start)
    with pytest.raises(LatencyTableError, match=f"lightest network .*{floor:.3f} ms"):
        derive_under_latency(space, _alpha(space), table, floor - 0.05)
    with pytest.raises(LatencyTableError, match="alpha has shape"):
        derive_under_latency(space, torch.zeros(2, 2), table, 1.0)


def test_lighten_walks_randomly_and_repeats_with_its_generator(space, table):
    start = derive(space, _alpha(space))
    target = 0.5 * (lightest(start, table) + table.predict(start))
    a = lighten(start, table, target, generator=torch.Generator().manual_seed(3))
    b = lighten(start, table, target, generator=torch.Generator().manual_seed(3))
    assert a is not None and a[1] <= target and a[0].cells == b[0].cells
    guided, _ = derive_under_latency(space, _alpha(space), table, target)
    outs = {tuple(_ops(lighten(start, table, target, generator=torch.Generator().manual_seed(s))[0]))
            for s in range(6)}
    assert len(outs) > 1  # random, unlike the guided walk
    assert lighten(start, table, lightest(start, table) - 0.05) is None
    assert tuple(_ops(guided)) == tuple(_ops(derive_under_latency(space, _alpha(space), table, target)[0]))


def test_derive_with_ops_uses_only_them_in_the_start_and_every_step(space, table):
    from gasgnn import SpaceError

    alpha = _alpha(space, "conv_3x3")
    alpha[:, space.ops.index("skip_connect")] = 2.0  # the cheapest op, and second in alpha
    alpha[:, space.ops.index("sep_conv_3x3")] = 1.0
    ops = ("max_pool_3x3", "sep_conv_3x3")
    start = derive(space, alpha, ops=ops)
    assert set(_ops(start)) == {"sep_conv_3x3"}  # conv_3x3 and skip are stronger but not allowed
    assert derive(space, alpha).cells != start.cells
    before, floor = table.predict(start), lightest(start, table, ops=ops)
    assert floor > lightest(start, table)  # skip_connect would go lower
    g, pred = derive_under_latency(space, alpha, table, 0.5 * (before + floor), ops=ops)
    assert pred <= 0.5 * (before + floor) and set(_ops(g)) == {"sep_conv_3x3", "max_pool_3x3"}
    with pytest.raises(LatencyTableError, match="lightest network"):
        derive_under_latency(space, alpha, table, 0.99 * floor, ops=ops)
    with pytest.raises(SpaceError, match="outside ops"):
        derive_under_latency(space, alpha, table, 1e6, genotype=derive(space, alpha), ops=ops)
    with pytest.raises(SpaceError, match=r"\['avg_pool_3x3'\] are not in the space's ops"):
        derive(space, alpha, ops=("avg_pool_3x3", "conv_3x3"))
