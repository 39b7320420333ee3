"""Every conv of torch_geometric.nn.conv either works as a guide on the default ArchGraph, on alpha's
scale, or raises GuideError: no other exception, no silent blow-up."""

import warnings

import pytest
import torch
import torch_geometric.nn.conv as pyg_conv

from gasgnn import SearchSpace
from gasgnn.ggm import GraphGuidedModule, GuideError, PyGGuideConv, build_conv, build_guide, build_pyg_conv

SPACE = SearchSpace()
GRAPH = SPACE.arch_graph()
NAMES = list(pyg_conv.__all__)

#: Convs that need an option, with one that makes them work (the error must name the parameter).
OPTIONS = {
    "ChebConv": {"K": 2},
    "GatedGraphConv": {"conv_num_layers": 1},  # num_layers is the guide's own option
    "SSGConv": {"alpha": 0.1},
    "APPNP": {"K": 2, "alpha": 0.1},
    "GCN2Conv": {"alpha": 0.1},
    "GPSConv": {"norm": None},
}


def _run(spec, **kwargs):
    """Builds a guide and runs forward + backward at alpha's initialisation; returns (ratio, alpha)."""
    torch.manual_seed(0)
    alpha = torch.nn.Parameter(SPACE.init_alpha())  # as the Supernet initialises it
    guide = build_guide(spec, SPACE, hidden_channels=4, **kwargs)
    out = guide(alpha, GRAPH)
    out.retain_grad()
    (out * torch.randn_like(out)).sum().backward()
    assert out.shape == alpha.shape
    assert out.grad is not None and torch.isfinite(out.grad).all()
    assert alpha.grad is not None and torch.isfinite(alpha.grad).all() and alpha.grad.abs().sum() > 0
    ratio = float(out.detach().abs().max() / alpha.detach().abs().max())
    assert torch.isfinite(out).all() and ratio <= 10.0, f"alpha' is {ratio:.3g}x alpha"
    return ratio


def test_every_pyg_conv_runs_or_raises_guide_error():
    ok, refused = [], {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in NAMES:
            try:
                _run(getattr(pyg_conv, name))
                ok.append(name)
            except GuideError as e:
                refused[name] = str(e)
    # Every refusal names the conv.
    for name, msg in refused.items():
        assert name in msg, msg
    # Measured with PyG 2.8: 28 of 67 run out of the box; a regression in the builder drops this.
    assert len(ok) >= 25, (len(ok), sorted(refused))
    for name in ("GCNConv", "SAGEConv", "GATConv", "GINConv", "LGConv", "DirGNNConv", "AntiSymmetricConv",
                 "FAConv", "MixHopConv", "EdgeConv"):
        assert name in ok, refused.get(name)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_convs_that_need_an_option_name_it_and_run_with_it(name):
    cls = getattr(pyg_conv, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name != "GPSConv":  # GPSConv builds, then its batch norm blows alpha up (next test)
            with pytest.raises(GuideError, match=f"{name}.*{next(iter(OPTIONS[name]))}=VALUE"):
                build_guide(cls, SPACE, hidden_channels=4)
        _run(cls, **OPTIONS[name])
        _run(name, **OPTIONS[name])  # by class name, as --guide APPNP would


def test_silent_blow_ups_become_guide_errors():
    # APPNP(8, 8) read positionally is K=8, alpha=8: alpha' grows by orders of magnitude.
    with pytest.raises(GuideError, match=r"APPNP.*x max\|alpha\|"):
        build_guide(pyg_conv.APPNP, SPACE, K=8, alpha=8.0)
    with pytest.raises(GuideError, match=r"GPSConv.*norm=None"):
        build_guide("GPSConv", SPACE)


def test_widths_go_by_name_and_width_keeping_convs_get_a_projection():
    c = build_pyg_conv(pyg_conv.APPNP, 8, 3, K=1, alpha=0.5)
    assert isinstance(c, PyGGuideConv) and c.conv.K == 1 and c.conv.alpha == 0.5
    assert c.proj is not None and c(torch.randn(5, 8), torch.tensor([[0, 1], [1, 2]])).shape == (5, 3)
    g = build_pyg_conv(pyg_conv.GatedGraphConv, 8, 8, conv_num_layers=2)
    assert g.conv.num_layers == 2 and g.conv.out_channels == 8
    d = build_conv(pyg_conv.DirGNNConv, 8, 8, inner_conv="sage")
    assert type(d.conv.conv_in).__name__ == "SAGEConv"
    biases = [p for n, p in build_pyg_conv(pyg_conv.GraphConv, 8, 8).named_parameters() if n.endswith("bias")]
    assert biases and all(float(p.detach().abs().sum()) == 0 for p in biases)


def test_errors_name_conv_parameter_and_how_to_pass_it():
    with pytest.raises(GuideError, match=r"APPNP.*K \(int\), alpha \(float\).*--guide-arg K=VALUE"):
        build_pyg_conv(pyg_conv.APPNP, 8, 8)
    with pytest.raises(GuideError, match=r"AntiSymmetricConv: no constructor parameter\(s\) \['kk'\]"):
        build_pyg_conv(pyg_conv.AntiSymmetricConv, 8, 8, kk=1)
    with pytest.raises(GuideError, match="takes .hyperedge_index., not an edge_index"):
        build_pyg_conv(pyg_conv.HypergraphConv, 8, 8)


def test_guide_kwargs_reach_the_conv():
    g = build_guide("APPNP", SPACE, K=3, alpha=0.2, gamma=0.25)
    assert isinstance(g, GraphGuidedModule) and g.gamma == 0.25
    assert g.convs[0].conv.K == 3 and g.convs[0].conv.alpha == 0.2


def test_guide_arg_flag_is_repeatable_and_typed():
    from gasgnn.cli import build_parser

    args = build_parser().parse_args(
        ["search", "--guide", "APPNP", "--guide-arg", "K=2", "--guide-arg", "alpha=0.1",
         "--guide-arg", "conv_act=None", "--guide-arg", "inner_conv=gat"]
    )
    assert dict(args.guide_arg) == {"K": 2, "alpha": 0.1, "conv_act": None, "inner_conv": "gat"}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["search", "--guide-arg", "no-equals"])
    g = build_guide(args.guide, SPACE, **{k: v for k, v in args.guide_arg if k in ("K", "alpha")})
    assert g.convs[0].conv.K == 2


def test_search_command_hands_guide_args_to_the_guide(tmp_path, capsys):
    from gasgnn.cli import main

    # The guide is built before any data or table: its errors come first and show the options arrived.
    argv = ["search", "--out", str(tmp_path / "run"), "--guide", "APPNP"]
    assert main(argv) == 2
    assert "K (int), alpha (float)" in capsys.readouterr().err
    assert main(argv + ["--guide-arg", "K=8", "--guide-arg", "alpha=8.0"]) == 2
    assert "x max|alpha|" in capsys.readouterr().err  # built with K=8, alpha=8: the blow-up is refused
