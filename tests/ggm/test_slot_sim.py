"""The default guide 'slot_sim': SlotSimilarityConv (normalised key, Sinkhorn, slot prior), the bounded
update and the guide's regularizer."""

import pytest
import torch
from torch import nn

from gasgnn import SearchSpace
from gasgnn.ggm import (
    DEFAULT_GUIDE,
    FCGuide,
    GraphGuidedModule,
    GuideError,
    SimilarityGCNConv,
    SlotSimilarityConv,
    balance_penalty,
    build_guide,
    distinct_sources,
    sinkhorn,
    update_ratio,
)


def block(E: int) -> torch.Tensor:
    """A complete bipartite block: sources 0..E-1 -> targets E..2E-1."""
    return torch.tensor([[j, E + i] for i in range(E) for j in range(E)]).t()


@pytest.fixture
def space():
    return SearchSpace(num_cells=4, num_nodes=3, reduction_cells=(2,), channels=4, input_size=(32, 32))


# ------------------------------------------------------------------------------------------------
# SlotSimilarityConv


def test_plain_settings_equal_similarity_gcn():
    torch.manual_seed(0)
    ref = SimilarityGCNConv(4, 3, hidden_channels=5, sim_channels=6, temperature=2.0)
    conv = SlotSimilarityConv(4, 3, hidden_channels=5, sim_channels=6, temperature=2.0, normalize="none",
                              sinkhorn_iters=0)
    conv.load_state_dict(ref.state_dict())
    x, s = torch.randn(6, 4), torch.randn(6, 6)
    ei = torch.tensor([[0, 0, 1, 0, 1, 2, 2, 3, 4, 4], [1, 2, 2, 3, 3, 3, 4, 4, 1, 5]])
    out, (_, att) = conv(x, ei, return_attention_weights=True, sim_x=s)
    want, (_, want_att) = ref(x, ei, return_attention_weights=True, sim_x=s)
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(att, want_att)
    assert torch.equal(conv.last_attention[1], att.detach())
    assert out[0].abs().sum() == 0  # no incoming edges


def test_sinkhorn_balances_sources_and_keeps_rows_normalised():
    E = 5
    ei = block(E)
    g = torch.Generator().manual_seed(0)
    # each target i prefers source (i + 2) % E, but a source-only term (a popular key) puts source 0 first
    own = 3.0 * (ei[0] == (ei[1] - E + 2) % E)
    hub = 6.0 * (ei[0] == 0)
    scores = own + hub + 0.1 * torch.randn(ei.size(1), generator=g)
    rows = sinkhorn(scores, ei, (2 * E, 2 * E), 0)
    bal = sinkhorn(scores, ei, (2 * E, 2 * E), 20)
    # Sinkhorn cancels any score that depends on the source alone: the hub term changes nothing
    torch.testing.assert_close(bal, sinkhorn(scores - hub, ei, (2 * E, 2 * E), 20), atol=1e-4, rtol=0)
    for w in (rows, bal):
        torch.testing.assert_close(torch.zeros(2 * E).index_add_(0, ei[1], w)[E:], torch.ones(E))
    load = torch.zeros(2 * E).index_add_(0, ei[0], bal)[:E]
    torch.testing.assert_close(load, torch.ones(E), atol=1e-3, rtol=0)  # doubly stochastic
    assert distinct_sources([(ei, rows)], 2 * E, E) < 1.5  # the hub: source 0 for (nearly) all
    assert distinct_sources([(ei, bal)], 2 * E, E) == E
    # the softmax of SimilarityGCNConv is the 0-round case
    want = torch.cat([torch.softmax(scores[ei[1] == E + i], 0) for i in range(E)])
    torch.testing.assert_close(rows, want)


def test_normalised_key_ignores_key_length():
    conv = SlotSimilarityConv(3, 3, normalize="key", sinkhorn_iters=0)
    x = torch.randn(4, 3)
    ei = torch.tensor([[0, 1, 2], [3, 3, 3]])
    _, (_, a1) = conv(x, ei, return_attention_weights=True)
    y = x.clone()
    y[1] *= 50.0  # a longer key: it would take the whole row without the normalisation
    _, (_, a2) = conv((y, x), ei, return_attention_weights=True, sim_x=(y, x))
    torch.testing.assert_close(a1, a2)


def test_position_prior_makes_slot_to_slot_attention():
    E = 6
    ei = block(E)
    conv = SlotSimilarityConv(4, 4, num_positions=E, position_prior=4.0, sinkhorn_iters=0)
    nn.init.zeros_(conv.phi.weight)  # no similarity: only the prior speaks
    pos = torch.arange(2 * E) % E
    _, (_, att) = conv(torch.randn(2 * E, 4), ei, return_attention_weights=True, pos=pos)
    assert distinct_sources([(ei, att)], 2 * E, E) == E
    diag = att[ei[0] == ei[1] - E]
    assert torch.all(diag > 0.9)
    att.sum().backward()  # the table is learnable
    assert conv.pos_bias.grad is not None
    with pytest.raises(GuideError, match="pos"):
        conv(torch.randn(2 * E, 4), ei)
    with pytest.raises(GuideError, match="normalize"):
        SlotSimilarityConv(4, 4, normalize="cosine")


# ------------------------------------------------------------------------------------------------
# The bounded update


def inflate(guide: nn.Module, factor: float) -> None:
    """Adversarial weights: every value map / output layer multiplied by ``factor``."""
    with torch.no_grad():
        for name, p in guide.named_parameters():
            if name.endswith("lin.weight") or name.startswith("mlp"):
                p.mul_(factor)


@pytest.mark.parametrize("spec, kw", [("slot_sim", {}), ("gcn_sim", {"bounded": True, "gamma": 0.9}),
                                      ("fc", {"bounded": True, "gamma": 0.9}),
                                      ("slot_sim", {"learn_gamma": True, "gamma": 0.5})])
def test_update_ratio_stays_below_gamma_for_any_weights(space, spec, kw):
    g = torch.Generator().manual_seed(0)
    alpha = torch.randn(space.num_arch_nodes, space.num_ops, generator=g)
    alpha[: space.edges_per_cell * 2] *= 1e-3  # small cells next to large ones
    guide = build_guide(spec, space, **kw)
    assert guide.bounded
    inflate(guide, 1e4)
    if kw.get("learn_gamma"):
        with torch.no_grad():
            guide.gamma_logit.fill_(50.0)  # sigmoid(50) = 1 - 2e-22: still below 1
    gamma = float(torch.as_tensor(guide.scale()).detach())
    with torch.no_grad():
        ratio = update_ratio(alpha, guide(alpha))
    assert ratio < min(gamma, 1.0)
    # ... where the same weights without the bound give an update far larger than alpha
    unbounded = build_guide(spec, space, **{**kw, "bounded": False, "gamma": 0.5, "learn_gamma": False})
    unbounded.load_state_dict({k: v for k, v in guide.state_dict().items() if k != "gamma_logit"}, strict=False)
    with torch.no_grad():
        assert update_ratio(alpha, unbounded(alpha)) > 10


def test_bound_is_per_cell_and_differentiable(space):
    guide = build_guide("slot_sim", space)
    alpha = nn.Parameter(space.init_alpha())
    out = guide(alpha)
    E = space.edges_per_cell
    assert torch.equal(out[:E], alpha[:E])  # cell 0: no incoming messages
    L = space.num_cells
    d = (out - alpha).detach().reshape(L, -1).norm(dim=1)
    assert torch.all(d <= guide.scale() * alpha.detach().reshape(L, -1).norm(dim=1))
    (out * torch.randn_like(out)).sum().backward()
    assert torch.isfinite(alpha.grad).all()
    for name, p in guide.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_bounded_gamma_checks(space):
    with pytest.raises(GuideError, match="gamma < 1"):
        build_guide("slot_sim", space, gamma=1.0)
    with pytest.raises(GuideError, match="gamma < 1"):
        FCGuide(space, gamma=0.0, learn_gamma=True, bounded=True)
    assert build_guide("slot_sim", space, gamma=0.0)(space.init_alpha()) is not None


# ------------------------------------------------------------------------------------------------
# The default guide and its regularizer


def test_default_guide_is_slot_sim(space):
    from gasgnn.search import SearchConfig

    assert DEFAULT_GUIDE == "slot_sim" == SearchConfig().guide
    g = build_guide(DEFAULT_GUIDE, space)
    assert isinstance(g, GraphGuidedModule) and isinstance(g.convs[0], SlotSimilarityConv)
    assert g.bounded and g.uses_sim_x and g.convs[0].num_positions == space.edges_per_cell
    # at initialisation the slot prior gives every slot its own source
    alpha = space.init_alpha()
    d = g.diagnostics(alpha, g(alpha))
    assert d["guide_distinct_sources"] == space.edges_per_cell and d["guide_update_ratio"] < 0.5


def test_balance_penalty_and_regularizer(space):
    E = 4
    ei = block(E)
    hub = (ei[0] == 0).float()
    assert balance_penalty(ei, hub, E, 2 * E) == pytest.approx(E - 1)
    assert balance_penalty(ei, torch.full((E * E,), 1 / E), E, 2 * E) == pytest.approx(0.0)
    alpha = nn.Parameter(space.init_alpha())
    assert build_guide("gcn_sim", space).regularizer() is None
    g = build_guide("gcn_sim", space, balance_weight=2.0, entropy_weight=0.5, value_decay=0.1)
    g(alpha)
    reg = g.regularizer()
    assert reg.requires_grad and reg.dim() == 0
    reg.backward()
    assert g.convs[0].phi.weight.grad.abs().sum() > 0  # the attention terms reach the similarity
    assert g.convs[0].lin.weight.grad.abs().sum() > 0  # the decay reaches W
    with pytest.raises(GuideError, match="balance_weight"):
        build_guide("gcn_sim", space, balance_weight=-1.0)
    with pytest.raises(GuideError, match="attention"):
        build_guide("sage", space, balance_weight=1.0)
