import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import MessagePassing

from gasgnn import Supernet
from gasgnn.ggm import (
    GUIDES,
    FCGuide,
    GraphGuidedModule,
    GuideError,
    NoGuide,
    SimilarityGCNConv,
    build_guide,
    guide_names,
    register_guide,
)


class MyConv(MessagePassing):
    """A conv that exists only in this test module, reached by import path ``<this module>:MyConv``."""

    def __init__(self, in_channels: int, out_channels: int, scale: float = 1.0) -> None:
        super().__init__(aggr="mean")
        self.in_channels, self.out_channels, self.scale = in_channels, out_channels, scale
        self.lin = nn.Linear(in_channels, out_channels)

    def forward(self, x, edge_index):
        return self.scale * self.propagate(edge_index, x=self.lin(x))


MY_CONV = f"{__name__}:MyConv"


def edge_set(ei):
    return set(map(tuple, ei.t().tolist()))


# ------------------------------------------------------------------------------------------------
# SimilarityGCNConv


def test_similarity_gcn_repr_and_shapes():
    conv = SimilarityGCNConv(8, 8)
    assert str(conv) == "SimilarityGCNConv(8, 8)"
    assert str(SimilarityGCNConv(8, 4, hidden_channels=3)) == "SimilarityGCNConv(8, 4)"
    x = torch.randn(5, 8)
    ei = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    assert conv(x, ei).shape == (5, 8)
    # bipartite: 3 sources with 6 features -> 2 targets with 4 features
    bip = SimilarityGCNConv((6, 4), 5)
    out = bip((torch.randn(3, 6), torch.randn(2, 4)), torch.tensor([[0, 1, 2], [0, 0, 1]]))
    assert out.shape == (2, 5)


def test_similarity_gcn_equals_dense_computation():
    conv = SimilarityGCNConv(4, 3, hidden_channels=5)
    N = 6
    X = torch.randn(N, 4)
    # node 0 has no incoming edge; node 5 has one; others several
    ei = torch.tensor([[0, 0, 1, 0, 1, 2, 2, 3, 4, 4], [1, 2, 2, 3, 3, 3, 4, 4, 1, 5]])
    out, (ei_out, att) = conv(X, ei, return_attention_weights=True)

    adj = torch.zeros(N, N, dtype=torch.bool)  # adj[i, j]: edge j -> i
    adj[ei[1], ei[0]] = True
    S = conv.phi(X) @ conv.phi_prime(X).t()
    A = torch.softmax(S.masked_fill(~adj, float("-inf")), dim=1)
    A = torch.nan_to_num(A, nan=0.0)  # a row without neighbours is all -inf: no messages
    dense = A @ X @ conv.lin.weight.t()
    torch.testing.assert_close(out, dense)
    assert out[0].abs().sum() == 0  # no incoming edges: exactly zero
    assert torch.equal(ei_out, ei)
    torch.testing.assert_close(att, A[ei[1], ei[0]])
    torch.testing.assert_close(torch.zeros(N).index_add_(0, ei[1], att)[1:], torch.ones(N - 1))


# ------------------------------------------------------------------------------------------------
# GraphGuidedModule: gamma, gradients, builders


def test_gamma_zero_is_identity(tiny_space):
    alpha = nn.Parameter(tiny_space.init_alpha())
    graph = tiny_space.arch_graph(alpha)
    g = GraphGuidedModule(tiny_space, gamma=0.0)
    out = g(alpha, graph)
    assert torch.equal(out.detach().view(torch.int32), alpha.detach().view(torch.int32))  # bitwise
    # learnable gamma starting at 0: alpha' == alpha, yet gamma gets a gradient and can move
    g = GraphGuidedModule(tiny_space, gamma=0.0, learn_gamma=True)
    out = g(alpha, graph)
    assert torch.equal(out, alpha)
    (out * torch.randn_like(out)).sum().backward()
    assert g.gamma.grad is not None and g.gamma.grad.abs() > 0
    assert any(p is g.gamma for p in g.parameters())


def test_gradients_reach_alpha_and_parameters(tiny_space):
    alpha = nn.Parameter(tiny_space.init_alpha())
    g = GraphGuidedModule(tiny_space)
    out = g(alpha, tiny_space.arch_graph(alpha))
    E = tiny_space.edges_per_cell
    assert torch.equal(out[:E], alpha[:E])  # the first cell has no incoming messages
    assert not torch.allclose(out[E:], alpha[E:])
    (out * torch.randn_like(out)).sum().backward()
    assert alpha.grad is not None and alpha.grad.abs().sum() > 0
    for name, p in g.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_builder_edge_index_matches_docs(tiny_space):
    L, E = tiny_space.num_cells, tiny_space.edges_per_cell
    cells = range(L)
    slots = range(E)
    expect = {
        "adjacent": {((k - 1) * E + a, k * E + b) for k in cells[1:] for a in slots for b in slots},
        "aligned": {((k - 1) * E + e, k * E + e) for k in cells[1:] for e in slots},
        "all_previous": {
            (j * E + a, k * E + b) for k in cells for j in range(k) for a in slots for b in slots
        },
        "cells": {(k - 1, k) for k in cells[1:]},
    }
    for builder, want in expect.items():
        g = GraphGuidedModule(tiny_space, builder=builder)
        assert edge_set(g.edge_index) == want, builder
        assert g.edge_index.size(1) == len(want), builder  # no duplicates
        assert "edge_index" not in g.state_dict()
    # the default builder is the ArchGraph's own default relation
    assert torch.equal(GraphGuidedModule(tiny_space).edge_index, tiny_space.arch_graph().edge_index)


@pytest.mark.parametrize(
    "builder, reaches",
    [("adjacent", {1}), ("aligned", {1}), ("all_previous", {1, 2}), ("cells", {1})],
)
def test_builder_information_flow(tiny_space, builder, reaches):
    # One layer: perturbing cell 0 moves exactly the cells its relation sends messages to.
    E = tiny_space.edges_per_cell
    g = GraphGuidedModule(tiny_space, builder=builder).eval()
    alpha = tiny_space.init_alpha()
    a2 = alpha.clone()
    a2[:E] += torch.randn(E, tiny_space.num_ops)
    diff = (g.guidance(a2, None) - g.guidance(alpha, None)).abs().view(tiny_space.num_cells, -1).sum(1)
    assert {k for k in range(tiny_space.num_cells) if diff[k] > 0} == reaches


def test_aligned_moves_only_the_same_slot(tiny_space):
    E = tiny_space.edges_per_cell
    g = GraphGuidedModule(tiny_space, builder="aligned")
    alpha = tiny_space.init_alpha()
    a2 = alpha.clone()
    a2[2] += 1.0  # slot 2 of cell 0
    moved = (g.guidance(a2, None) - g.guidance(alpha, None)).abs().sum(1).nonzero().flatten().tolist()
    assert moved == [E + 2]


def test_builder_none_uses_graph_edge_index(tiny_space):
    alpha = tiny_space.init_alpha()
    ref = GraphGuidedModule(tiny_space, builder="aligned")
    g = GraphGuidedModule(tiny_space, builder=None)
    g.load_state_dict(ref.state_dict())
    torch.testing.assert_close(g(alpha, tiny_space.arch_graph(alpha, builder="aligned")), ref(alpha))
    with pytest.raises(GuideError, match="needs a graph"):
        g(alpha)


def test_state_dict_round_trip(tiny_space):
    alpha = tiny_space.init_alpha()
    a = GraphGuidedModule(tiny_space, num_layers=2, hidden_channels=5, learn_gamma=True)
    assert a.convs[0].hidden_channels == 5 and a.convs[0].out_channels == 5
    b = GraphGuidedModule(tiny_space, num_layers=2, hidden_channels=5, learn_gamma=True)
    assert not torch.allclose(a(alpha), b(alpha))
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(alpha), b(alpha))
    a.reset_parameters()
    assert not torch.allclose(a(alpha), b(alpha))


def test_multi_layer_and_conv_options(tiny_space):
    alpha = nn.Parameter(tiny_space.init_alpha())
    g = GraphGuidedModule(tiny_space, conv="gat", num_layers=3, hidden_channels=6, heads=2, concat=True)
    assert [c.out_channels * c.heads for c in g.convs] == [6, 6, 8]
    out = g(alpha)
    assert out.shape == alpha.shape
    out.sum().backward()
    assert all(p.grad is not None for p in g.parameters())
    with pytest.raises(GuideError, match="divisible by heads"):
        GraphGuidedModule(tiny_space, conv="gat", heads=3, concat=True)


# ------------------------------------------------------------------------------------------------
# Every guide inside one supernet search step


GNN_SPECS = ["gcn_sim", "gcn", "gat", "gatv2", "sage", "gin", "transformer", MY_CONV]
STEP_CASES = [(s, b) for s in GNN_SPECS for b in ("adjacent", "cells")] + [("fc", None), ("none", None)]


@pytest.mark.parametrize("spec, builder", STEP_CASES)
def test_search_step_with_every_guide(tiny_space, spec, builder):
    kwargs = {"builder": builder} if builder else {}
    net = Supernet(tiny_space)
    graph = net.arch_graph()
    guide = build_guide(spec, tiny_space, **kwargs)
    params = list(guide.parameters())
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.1)
    a_opt = torch.optim.Adam([net.alpha, *params], lr=3e-4)
    alpha0, params0 = net.alpha.detach().clone(), [p.detach().clone() for p in params]

    x, y = torch.randn(2, 3, 32, 32), torch.randint(0, tiny_space.num_classes, (2, 32, 32))
    alpha_p = guide(net.alpha, graph)
    assert alpha_p.shape == net.alpha.shape
    loss = F.cross_entropy(net(x, alpha_p), y)
    loss.backward()
    assert net.alpha.grad is not None and net.alpha.grad.abs().sum() > 0
    for p in params:
        assert p.grad is not None and torch.isfinite(p.grad).all()
    if spec != "none":
        assert params and sum(p.grad.abs().sum() for p in params) > 0
    w_opt.step()
    a_opt.step()
    assert not torch.equal(net.alpha.detach(), alpha0)
    if params:
        assert any(not torch.equal(p.detach(), p0) for p, p0 in zip(params, params0))


# ------------------------------------------------------------------------------------------------
# Baselines


def test_fc_baseline(tiny_space):
    L, E, K = tiny_space.num_cells, tiny_space.edges_per_cell, tiny_space.num_ops
    g = FCGuide(tiny_space, gamma=0.3)
    with torch.no_grad():  # the output bias starts at zero; give it a value to check it is applied
        g.mlp[-1].bias.normal_()
    alpha = tiny_space.init_alpha()
    out = g(alpha)
    torch.testing.assert_close(out[:E], alpha[:E], rtol=0, atol=0)
    lin = g.mlp[0]
    for k in range(1, L):
        prev = alpha[(k - 1) * E:k * E].reshape(-1)
        want = alpha[k * E:(k + 1) * E] + 0.3 * (lin.weight @ prev + lin.bias).view(E, K)
        torch.testing.assert_close(out[k * E:(k + 1) * E], want)
    # cell k only hears cell k-1
    a2 = alpha.clone()
    a2[E:2 * E] += 1.0
    changed = (g.guidance(a2, None) - g.guidance(alpha, None)).abs().view(L, -1).sum(1) > 0
    assert changed.tolist() == [False, False, True]
    assert len(FCGuide(tiny_space, num_layers=2, hidden_channels=5).mlp) == 3


def test_fc_starts_without_op_preference(tiny_space):
    g = FCGuide(tiny_space)
    zero = torch.zeros(tiny_space.num_arch_nodes, tiny_space.num_ops)
    assert torch.equal(g(zero), zero)


def test_none_baseline(tiny_space):
    g = build_guide("none", tiny_space)
    assert isinstance(g, NoGuide) and not list(g.parameters())
    alpha = tiny_space.init_alpha()
    assert g(alpha, tiny_space.arch_graph(alpha)) is alpha
    assert isinstance(build_guide(None, tiny_space), NoGuide)


# ------------------------------------------------------------------------------------------------
# Registry, import paths and errors


def test_registry_names_and_custom_guide(tiny_space, monkeypatch):
    assert {"gcn_sim", "gcn", "gat", "gatv2", "sage", "gin", "transformer", "fc", "none"} <= set(guide_names())
    monkeypatch.setattr(GUIDES, "_items", dict(GUIDES._items))  # the registration below is undone

    @register_guide("doubling")
    class Doubling(nn.Module):
        def __init__(self, space, factor=2.0):
            super().__init__()
            self.factor = factor

        def forward(self, alpha, graph=None):
            return self.factor * alpha

    alpha = tiny_space.init_alpha()
    torch.testing.assert_close(build_guide("doubling", tiny_space, factor=3.0)(alpha), 3 * alpha)
    with pytest.raises(KeyError, match="guide 'doubling' is already registered"):
        register_guide("doubling")(Doubling)
    with pytest.raises(GuideError, match="without ':'"):
        register_guide("a:b")
    with pytest.raises(GuideError, match="unknown guide 'nope'.*gcn_sim"):
        build_guide("nope", tiny_space)


def test_guide_classes_from_an_outside_package(tiny_space, tmp_path, monkeypatch):
    (tmp_path / "my_guides.py").write_text(textwrap.dedent("""
        import torch
        from torch_geometric.nn import MessagePassing

        class SumConv(MessagePassing):
            def __init__(self, in_channels, out_channels):
                super().__init__(aggr="add")
                self.in_channels, self.out_channels = in_channels, out_channels
                self.lin = torch.nn.Linear(in_channels, out_channels, bias=False)

            def forward(self, x, edge_index):
                return self.propagate(edge_index, x=self.lin(x))

        class ShiftGuide(torch.nn.Module):
            def __init__(self, space, shift=1.0):
                super().__init__()
                self.shift = torch.nn.Parameter(torch.tensor(shift))

            def forward(self, alpha, graph=None):
                return alpha + self.shift

        NOT_A_CLASS = 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    alpha = tiny_space.init_alpha()
    g = build_guide("my_guides:SumConv", tiny_space, gamma=1.0)
    assert isinstance(g, GraphGuidedModule) and type(g.convs[0]).__name__ == "SumConv"
    assert g(alpha).shape == alpha.shape
    s = build_guide("my_guides:ShiftGuide", tiny_space, shift=0.5)
    torch.testing.assert_close(s(alpha), alpha + 0.5)
    g2 = GraphGuidedModule(tiny_space, conv="my_guides:SumConv")
    assert type(g2.convs[0]).__name__ == "SumConv"
    with pytest.raises(GuideError, match="not a torch_geometric MessagePassing"):
        GraphGuidedModule(tiny_space, conv="my_guides:ShiftGuide")
    with pytest.raises(GuideError, match="my_guides:NOT_A_CLASS"):
        build_guide("my_guides:NOT_A_CLASS", tiny_space)
    with pytest.raises(GuideError, match="has no attribute 'Missing'"):
        build_guide("my_guides:Missing", tiny_space)
    with pytest.raises(GuideError, match="cannot import module 'no_such_pkg.mod'"):
        build_guide("no_such_pkg.mod:Conv", tiny_space)
    with pytest.raises(GuideError, match="'package.module:ClassName'"):
        GraphGuidedModule(tiny_space, conv="my_guides:")


def test_instances_and_classes(tiny_space):
    alpha = tiny_space.init_alpha()
    conv = MyConv(tiny_space.num_ops, tiny_space.num_ops)
    g = build_guide(conv, tiny_space)
    assert g.convs[0] is conv
    g2 = build_guide(MyConv, tiny_space, scale=0.0)  # conv kwargs reach the class
    assert torch.equal(g2(alpha), alpha)
    fc = FCGuide(tiny_space)
    assert build_guide(fc, tiny_space) is fc
    with pytest.raises(GuideError, match="instance is used as it is"):
        build_guide(fc, tiny_space, gamma=1.0)
    with pytest.raises(GuideError, match="pass its class"):
        GraphGuidedModule(tiny_space, conv=conv, num_layers=2)
    with pytest.raises(GuideError, match="could not build MyConv"):
        build_guide(MyConv, tiny_space, bogus=1)
    with pytest.raises(GuideError, match="expected a registered name"):
        build_guide(42, tiny_space)


def test_shape_errors(tiny_space):
    g = GraphGuidedModule(tiny_space)
    with pytest.raises(GuideError, match=r"alpha has shape \(4, 8\)"):
        g(torch.zeros(4, 8))
    other = tiny_space.replace(num_cells=4, reduction_cells=(1,))
    with pytest.raises(GuideError, match="graph.num_cells is 4"):
        g(tiny_space.init_alpha(), other.arch_graph())
    wrong = GraphGuidedModule(tiny_space, conv=MyConv(tiny_space.num_ops, 3))
    with pytest.raises(GuideError, match="returned shape"):
        wrong(tiny_space.init_alpha())
    with pytest.raises(GuideError, match="unknown 'ring'"):
        GraphGuidedModule(tiny_space, builder="ring")
    with pytest.raises(GuideError, match="takes no options"):
        GraphGuidedModule(tiny_space, builder="cells", builder_kwargs={"k": 1})
    with pytest.raises(GuideError, match="unknown conv 'gcnn'"):
        GraphGuidedModule(tiny_space, conv="gcnn")


# ------------------------------------------------------------------------------------------------
# The similarity at the default init scale (issue 16)


def test_similarity_gcn_sim_x_and_temperature_equal_dense_computation():
    conv = SimilarityGCNConv(4, 3, hidden_channels=5, sim_channels=7, temperature=2.0)
    X, S_in = torch.randn(4, 4), torch.randn(4, 7)
    ei = torch.tensor([[0, 1, 2, 0], [3, 3, 3, 1]])
    out, (_, att) = conv(X, ei, return_attention_weights=True, sim_x=S_in)
    adj = torch.zeros(4, 4, dtype=torch.bool)
    adj[ei[1], ei[0]] = True
    S = conv.phi(S_in) @ conv.phi_prime(S_in).t() / 2.0
    A = torch.nan_to_num(torch.softmax(S.masked_fill(~adj, float("-inf")), dim=1), nan=0.0)
    torch.testing.assert_close(out, A @ X @ conv.lin.weight.t())
    torch.testing.assert_close(att, A[ei[1], ei[0]])
    assert torch.equal(conv.last_attention[1], att.detach())


def _attention_entropy(g, alpha):
    from gasgnn.ggm import attention_entropy

    g(alpha)
    return attention_entropy(g.attention(), alpha.size(0))


def test_default_gcn_sim_attends_at_default_init(tiny_space):
    # alpha at its default 1e-3 scale: the raw similarity is uniform to ~1e-6, the default is not, and
    # phi gets a gradient on the scale of W's (the raw one: ~1e-6 of it).
    torch.manual_seed(0)
    alpha = nn.Parameter(tiny_space.init_alpha())
    raw = build_guide("gcn_sim_raw", tiny_space)
    assert not raw.uses_sim_x and raw.convs[0].phi.in_features == tiny_space.num_ops
    assert _attention_entropy(raw, alpha) > 1 - 1e-5
    g = build_guide("gcn_sim", tiny_space)
    assert g.uses_sim_x and g.sim_input == "cell_norm" and g.slot_features
    assert _attention_entropy(g, alpha) < 0.99

    def grad_ratio(guide):
        guide.zero_grad()
        out = guide(alpha)
        (out * torch.randn_like(out)).sum().backward()
        c = guide.convs[0]
        return float(c.phi.weight.grad.norm() / c.lin.weight.grad.norm())

    assert grad_ratio(g) > 1e-2 and grad_ratio(raw) < 1e-4


def test_cell_norm_similarity_is_scale_free_and_stops_gradient(tiny_space):
    g = build_guide("gcn_sim", tiny_space, slot_features=False)
    alpha = tiny_space.init_alpha()
    s1, s2 = g.similarity_features(alpha), g.similarity_features(1000 * alpha)
    torch.testing.assert_close(s1, s2)
    # A stop-gradient: through a standardisation alpha's gradient would scale as 1/std (~1e3 here).
    assert not g.similarity_features(nn.Parameter(alpha.clone())).requires_grad
    g = build_guide("gcn_sim", tiny_space, sim_input="log_softmax")
    assert g.similarity_features(nn.Parameter(alpha.clone())).requires_grad


def test_slot_attributes_and_sim_inputs(tiny_space):
    from gasgnn.ggm import slot_attributes

    attr = slot_attributes(tiny_space)
    m = tiny_space.num_nodes
    assert attr.shape == (tiny_space.num_arch_nodes, (m + 1) + m + 2)
    assert torch.equal(attr[:, : m + 1].sum(1), torch.ones(attr.size(0)))  # one source each
    alpha = tiny_space.init_alpha()
    for sim_input in ("cell_norm", "log_softmax", "raw"):
        g = build_guide("gcn_sim", tiny_space, sim_input=sim_input)
        assert g(alpha).shape == alpha.shape
    with pytest.raises(GuideError, match="sim_input"):
        build_guide("gcn_sim", tiny_space, sim_input="bad")
    # cell mode has no slots: only the normalised alpha feeds the similarity
    cells = build_guide("gcn_sim", tiny_space, builder="cells")
    assert not cells.slot_features and cells(alpha).shape == alpha.shape


# ------------------------------------------------------------------------------------------------
# Extension points (issue 26): late conv registrations, similarity features without subclassing


def test_conv_registered_after_import_is_a_guide(tiny_space, monkeypatch):
    from gasgnn.ggm import CONVS

    monkeypatch.setattr(CONVS, "_items", dict(CONVS._items))  # the registration below is undone
    monkeypatch.setattr(CONVS, "_meta", dict(CONVS._meta))

    @CONVS.register("late_mean")
    def late_mean(in_channels, out_channels, hidden_channels, **kw):
        return MyConv(in_channels, out_channels, **kw)

    assert "late_mean" in guide_names() and "late_mean" not in GUIDES
    g = build_guide("late_mean", tiny_space, scale=2.0)
    assert isinstance(g, GraphGuidedModule) and isinstance(g.convs[0], MyConv) and g.convs[0].scale == 2.0
    alpha = tiny_space.init_alpha()
    assert g(alpha, tiny_space.arch_graph(alpha)).shape == alpha.shape
    CONVS.remove("late_mean")
    with pytest.raises(GuideError, match="unknown guide 'late_mean'"):
        build_guide("late_mean", tiny_space)


class SimSumConv(MessagePassing):
    """A similarity conv that is no SimilarityGCNConv: it declares the features by a class attribute."""

    similarity_features = True

    def __init__(self, in_channels, out_channels, sim_channels=None):
        super().__init__(aggr="add")
        self.in_channels, self.out_channels, self.sim_channels = in_channels, out_channels, sim_channels
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.gate = nn.Linear(sim_channels or in_channels, 1, bias=False)
        self.seen = None

    def forward(self, x, edge_index, sim_x=None):
        self.seen = sim_x
        s = x if sim_x is None else sim_x
        return self.propagate(edge_index, x=self.lin(x), g=torch.sigmoid(self.gate(s)))

    def message(self, x_j, g_j):
        return g_j * x_j


def test_similarity_features_without_subclassing(tiny_space, monkeypatch):
    from gasgnn.ggm import CONVS, slot_attributes, uses_similarity

    assert not issubclass(SimSumConv, SimilarityGCNConv) and uses_similarity(SimSumConv)
    assert uses_similarity("gcn_sim") and uses_similarity("slot_sim") and not uses_similarity("gat")
    assert not uses_similarity(MyConv) and uses_similarity(f"{__name__}:SimSumConv")
    alpha = tiny_space.init_alpha()
    for spec in (SimSumConv, f"{__name__}:SimSumConv"):
        g = build_guide(spec, tiny_space)
        assert g.uses_sim_x and g.slot_features
        conv = g.convs[0]
        assert conv.sim_channels == tiny_space.num_ops + slot_attributes(tiny_space).size(1)
        g(alpha)
        torch.testing.assert_close(conv.seen, g.similarity_features(alpha))
    # a registered name declares it by metadata (its factory is a function, not the class)
    monkeypatch.setattr(CONVS, "_items", dict(CONVS._items))
    monkeypatch.setattr(CONVS, "_meta", dict(CONVS._meta))
    CONVS.register("simsum", lambda i, o, h, **kw: SimSumConv(i, o, **kw), similarity=True)
    g = build_guide("simsum", tiny_space, sim_input="log_softmax", slot_features=False)
    g(alpha)
    torch.testing.assert_close(g.convs[0].seen, torch.log_softmax(alpha, -1))
    # without the declaration the conv gets no sim_x
    CONVS.register("plain_sum", lambda i, o, h, **kw: SimSumConv(i, o, **kw))
    g = build_guide("plain_sum", tiny_space)
    g(alpha)
    assert not g.uses_sim_x and g.convs[0].seen is None
