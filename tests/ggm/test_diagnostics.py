"""The guide diagnostics: attention entropy, distinct arg-max sources per cell, update ratio."""

import math

import pytest
import torch

from gasgnn.ggm import (
    DIAGNOSTICS,
    attention_entropy,
    build_guide,
    distinct_sources,
    guide_diagnostics,
    update_ratio,
)


def adjacent(cells: int, E: int) -> torch.Tensor:
    """Every slot of cell k-1 -> every slot of cell k, as the ArchGraph's 'adjacent' relation."""
    return torch.tensor([[(k - 1) * E + j, k * E + i] for k in range(1, cells) for i in range(E) for j in range(E)]).t()


def attention_from(ei: torch.Tensor, choice: dict[int, int], n: int, sharp: float = 5.0) -> torch.Tensor:
    """Row-softmax weights where target i prefers source choice[i]."""
    score = torch.tensor([sharp if choice[int(d)] == int(s) else 0.0 for s, d in ei.t()])
    w = torch.zeros(ei.size(1))
    for d in ei[1].unique():
        m = ei[1] == d
        w[m] = torch.softmax(score[m], 0)
    return w


def test_distinct_sources_hand_built():
    E, cells = 3, 3
    ei = adjacent(cells, E)
    n = cells * E
    # cell 1 (targets 3, 4, 5): a hub, every slot reads slot 0 of cell 0; cell 2 (6, 7, 8): one each
    choice = {3: 0, 4: 0, 5: 0, 6: 5, 7: 3, 8: 4}
    att = attention_from(ei, choice, n)
    assert distinct_sources([(ei, att)], n, E) == pytest.approx((1 + 3) / 2)
    # two of three read the same source in cell 2
    choice[8] = 3
    assert distinct_sources([(ei, attention_from(ei, choice, n))], n, E) == pytest.approx((1 + 2) / 2)
    # heads are averaged before the arg-max: head 2 prefers other sources, but weakly
    other = attention_from(ei, {3: 1, 4: 2, 5: 1, 6: 3, 7: 4, 8: 5}, n, sharp=0.5)
    heads = torch.stack([attention_from(ei, choice, n), other], dim=1)
    assert distinct_sources([(ei, heads)], n, E) == pytest.approx(1.5)
    # layers are averaged; ties go to the lowest source (uniform rows: source 0 resp. 3 everywhere)
    uniform = torch.full((ei.size(1),), 1 / E)
    assert distinct_sources([(ei, uniform)], n, E) == 1.0
    assert distinct_sources([(ei, att), (ei, uniform)], n, E) == pytest.approx((1 + 3 + 1 + 1) / 4)


def test_distinct_sources_ignores_single_edge_rows_and_empty():
    ei = torch.tensor([[0, 1], [2, 3]])  # each target has one edge: no choice
    assert math.isnan(distinct_sources([(ei, torch.ones(2))], 4, 2))
    assert math.isnan(distinct_sources([], 4, 2))


def test_attention_entropy_and_update_ratio():
    ei = adjacent(2, 4)
    assert attention_entropy([(ei, torch.full((16,), 0.25))], 8) == pytest.approx(1.0)
    onehot = attention_from(ei, {4: 0, 5: 1, 6: 2, 7: 3}, 8, sharp=100.0)
    assert attention_entropy([(ei, onehot)], 8) < 1e-6
    a = torch.ones(3, 2)
    assert update_ratio(a, 1.5 * a) == pytest.approx(0.5)


def test_guide_diagnostics_method(tiny_space):
    alpha = tiny_space.init_alpha()
    for name in ("slot_sim", "gcn_sim", "fc", "none"):
        g = build_guide(name, tiny_space)
        with torch.no_grad():
            ap = g(alpha)
        d = g.diagnostics(alpha, ap)
        assert tuple(d) == DIAGNOSTICS
        assert d == pytest.approx(guide_diagnostics(g, alpha, ap), nan_ok=True)
        assert d["guide_update_ratio"] == pytest.approx(update_ratio(alpha, ap))
        if name in ("fc", "none"):
            assert math.isnan(d["guide_attention_entropy"]) and math.isnan(d["guide_distinct_sources"])
        else:
            assert 1 <= d["guide_distinct_sources"] <= tiny_space.edges_per_cell
    assert build_guide("none", tiny_space).diagnostics(alpha, alpha)["guide_update_ratio"] == 0.0


def test_guide_diagnostics_of_a_plain_module(tiny_space):
    class Plain(torch.nn.Module):
        def forward(self, alpha, graph=None):
            return 2 * alpha

    alpha = tiny_space.init_alpha()
    d = guide_diagnostics(Plain(), alpha, Plain()(alpha))
    assert d["guide_update_ratio"] == pytest.approx(1.0) and math.isnan(d["guide_distinct_sources"])
