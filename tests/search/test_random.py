"""Random search's samplers: uniform rejection and the latency-matched 'lighten' walk."""

import pytest
import torch

from gasgnn.genotype import random_genotype, reference_genotype
from gasgnn.latency import LatencyTable
from gasgnn.search.random import sample_under_target


@pytest.fixture(scope="module")
def table(table):
    """The measured table with fixed op costs (skip cheapest, convs dearest), so the bounds below do not
    depend on how busy the machine was when it was measured."""
    t = LatencyTable.from_dict(table.to_dict())
    cost = {"skip_connect": 0.01, "max_pool_3x3": 0.2, "sep_conv_3x3": 0.6}
    for k, _ in t.items():
        if k.kind == "op":
            t[k] = cost.get(k.params[0], 1.0) * k.params[2]  # stride-2 ops cost twice
    return t


def _bounds(space, table):
    gen = torch.Generator().manual_seed(0)
    uniform = [table.predict(random_genotype(space, gen)) for _ in range(300)]
    return min(uniform), table.predict(reference_genotype("skip_only", space))


def test_lighten_reaches_targets_uniform_sampling_cannot(space, table):
    lo_uniform, floor = _bounds(space, table)
    assert floor < lo_uniform
    target = floor + 0.3 * (lo_uniform - floor)  # below every uniform sample, above the lightest network
    with pytest.raises(ValueError, match="--random-sampler lighten"):
        sample_under_target(space, 3, table, target, generator=torch.Generator().manual_seed(1), max_tries=300)
    out = sample_under_target(space, 4, table, target, generator=torch.Generator().manual_seed(1), sampler="lighten")
    assert len(out) == 4 and len({tuple(g.cells) for g, _ in out}) == 4  # distinct
    for g, pred in out:
        assert pred == pytest.approx(table.predict(g)) and pred <= target
        assert all(o != "none" for c in g.cells for _, _, o in c.edges)
    again = sample_under_target(space, 4, table, target, generator=torch.Generator().manual_seed(1), sampler="lighten")
    assert [g for g, _ in again] == [g for g, _ in out]  # seeded


def test_lighten_leaves_samples_under_the_target_as_drawn(space, table):
    lo_uniform, _ = _bounds(space, table)
    big = 10 * lo_uniform  # every sample fits: both samplers draw the same genotypes
    u = sample_under_target(space, 3, table, big, generator=torch.Generator().manual_seed(2))
    v = sample_under_target(space, 3, table, big, generator=torch.Generator().manual_seed(2), sampler="lighten")
    assert [g for g, _ in u] == [g for g, _ in v]


def test_sampler_errors(space, table):
    with pytest.raises(ValueError, match="unknown sampler"):
        sample_under_target(space, 1, table, 1.0, sampler="greedy")
    with pytest.raises(ValueError, match="needs a latency table"):
        sample_under_target(space, 1, None, 1.0, sampler="lighten")
    _, floor = _bounds(space, table)
    with pytest.raises(ValueError, match="found 0 of 1"):  # below the lightest network: unreachable
        sample_under_target(space, 1, table, 0.5 * floor, sampler="lighten", max_tries=5)
