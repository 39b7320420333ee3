"""The search really uses the guide (issue 16): alpha' reaches the forward, the latency term and the
derivation; one relaxed distribution per step; the guide trains only in architecture epochs; its
diagnostics and the adaptive latency weight reach metrics.csv and the checkpoint."""

import argparse
import csv
import math

import pytest
import torch
from torch import nn

from gasgnn import SearchSpace
from gasgnn.commands._data import search_loaders
from gasgnn.genotype import derive
from gasgnn.latency import LatencyTable
from gasgnn.search import SearchConfig, Searcher


class ShiftGuide(nn.Module):
    """alpha' = alpha + a fixed, large shift: a guide whose effect is known exactly."""

    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(7)
        self.register_buffer("shift", 3.0 * torch.randn(space.num_arch_nodes, space.num_ops, generator=g))

    def forward(self, alpha, graph=None):
        return alpha + self.shift


def _searcher(space, table, run_dir=None, epochs=3, warmup=1, steps=2, **kw):
    args = argparse.Namespace(data="synthetic", root=None, data_arg=["num_images=8"], scale_range=None, workers=0)
    wl, al, vl, _ = search_loaders(args, (32, 32), batch_size=2, seed=0)
    cfg = SearchConfig(epochs=epochs, warmup_epochs=warmup, batch_size=2, steps_per_epoch=steps,
                       latency_weight=0.1, **kw)
    return Searcher(space, cfg, wl, al, vl, table=table, run_dir=run_dir, progress=False)


def _spy(s):
    """Records the weights of every supernet forward and the logits of every latency-term call."""
    seen = {"forward": [], "latency": []}
    net_forward, lut = s.net.forward, s.lut

    def forward(x, weights):
        seen["forward"].append(weights.detach().clone())
        return net_forward(x, weights=weights)

    def lut_call(logits):
        seen["latency"].append(logits.detach().clone())
        return lut(logits)

    s.net.forward, s.lut = forward, lut_call
    return seen


def _batch(s):
    return next(iter(s.arch_loader(0)))


@pytest.mark.parametrize("relaxation, tau", [("softmax", 1.0), ("softmax", 0.5), ("gumbel", 0.7)])
def test_one_distribution_for_forward_and_latency(space, table, relaxation, tau):
    s = _searcher(space, table, relaxation=relaxation, latency_without_none=False)
    seen = _spy(s)
    with torch.no_grad():
        before = s.alpha_prime()
    s.step(_batch(s), _batch(s), tau)
    arch_w, lat_logits = seen["forward"][0], seen["latency"][0]
    # the latency term's op weights are the forward's, also under tau != 1 and a Gumbel sample
    torch.testing.assert_close(torch.softmax(lat_logits, -1), arch_w)
    if relaxation == "softmax":
        torch.testing.assert_close(arch_w, torch.softmax(before / tau, -1))
    else:  # a sample, not the mean
        assert (arch_w - torch.softmax(before / tau, -1)).abs().max() > 1e-2


def test_alpha_prime_reaches_forward_latency_and_derivation(space, table, monkeypatch):
    s = _searcher(space, table, guide=ShiftGuide(space), tau_start=0.5, tau_end=0.5)
    shift = s.guide.shift
    alpha0 = s.net.alpha.detach().clone()
    seen = _spy(s)
    s.step(_batch(s), _batch(s), 0.5)
    want = torch.softmax((alpha0 + shift) / 0.5, -1)
    torch.testing.assert_close(seen["forward"][0], want)  # the CE forward of the arch step
    torch.testing.assert_close(seen["latency"][0], (alpha0 + shift) / 0.5)  # the latency term
    with torch.no_grad():
        ap = s.net.alpha + shift
        torch.testing.assert_close(s.alpha_prime(), ap)
    # derivation reads softmax(alpha'/tau); with the shift dominating it differs from alpha's genotype
    assert s.derive(tau=0.5) == derive(space, ap / 0.5, graph=s.graph)
    assert s.derive(tau=0.5) != derive(space, s.net.alpha.detach(), graph=s.graph)
    # ... and exactly alpha'/tau reaches the DARTS rule
    import gasgnn.search.searcher

    got = []
    monkeypatch.setattr(gasgnn.search.searcher, "derive",
                        lambda sp, a, graph=None: got.append(a) or derive(sp, a, graph=graph))
    s.derive(tau=0.5)
    torch.testing.assert_close(got[0], ap / 0.5)


def test_guide_and_alpha_train_only_in_architecture_epochs(space, table, tmp_path):
    s = _searcher(space, table, tmp_path / "run", epochs=2, warmup=1)
    start = {"alpha": s.net.alpha.detach().clone(),
             **{n: p.detach().clone() for n, p in s.guide.named_parameters()}}
    assert len(start) > 1  # the default guide has parameters
    snaps = []
    orig = s._end_epoch

    def end_epoch(epoch, *a):
        snaps.append({"alpha": s.net.alpha.detach().clone(),
                      **{n: p.detach().clone() for n, p in s.guide.named_parameters()}})
        orig(epoch, *a)

    s._end_epoch = end_epoch
    s.run()
    for name, p0 in start.items():
        assert torch.equal(snaps[0][name], p0), f"{name} moved in the warm-up epoch"
        assert not torch.equal(snaps[1][name], p0), f"{name} did not move in the architecture epoch"
    groups = {g["name"]: g for g in s.a_opt.param_groups}
    assert groups["guide"]["weight_decay"] == 0.0 and groups["alpha"]["weight_decay"] == s.cfg.a_weight_decay


def test_guide_update_ratio_and_none(space, table, tmp_path):
    s = _searcher(space, table, tmp_path / "none", epochs=1, warmup=0, steps=1, guide="none")
    s.run()
    row = next(csv.DictReader(open(tmp_path / "none" / "metrics.csv")))
    assert float(row["guide_update_ratio"]) == 0.0 and math.isnan(float(row["guide_attention_entropy"]))
    assert math.isnan(float(row["guide_distinct_sources"]))


def test_default_guide_diagnostics_are_logged(space, table, tmp_path):
    from gasgnn.ggm import DIAGNOSTICS, guide_diagnostics
    from gasgnn.runner import RunDir

    s = _searcher(space, table, tmp_path / "run", epochs=2, warmup=1, steps=2)
    assert s.cfg.guide == "slot_sim"
    s.run()
    m = RunDir(tmp_path / "run").read_metrics()
    assert all(len(m[k]) == 2 and all(math.isfinite(v) for v in m[k]) for k in DIAGNOSTICS)
    assert all(1 <= v <= space.edges_per_cell for v in m["guide_distinct_sources"])
    assert all(0 < v < 0.5 for v in m["guide_update_ratio"])  # the bound: below gamma = 0.5
    with torch.no_grad():  # the last row is the final alpha's diagnostics
        want = guide_diagnostics(s.guide, s.net.alpha, s.alpha_prime())
    assert [m[k][-1] for k in DIAGNOSTICS] == pytest.approx([want[k] for k in DIAGNOSTICS], rel=1e-5)


class RegGuide(nn.Module):
    """alpha' = alpha, with an auxiliary loss (p - 5)^2 that only the regularizer hook can train."""

    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.zeros(()))

    def forward(self, alpha, graph=None):
        self._reg = (self.p - 5.0) ** 2
        return alpha + 0.0 * self.p

    def regularizer(self):
        return self._reg


def test_guide_regularizer_joins_the_architecture_loss(space, table):
    s = _searcher(space, table, guide=RegGuide(space))
    s.step(_batch(s), _batch(s), 1.0)
    assert 0.0 < float(s.guide.p.detach()) <= 1.1 * s.cfg.a_lr  # one Adam step towards 5
    s.step(_batch(s), None, 1.0)  # a weights-only step leaves it alone
    assert float(s.guide.p.detach()) <= 1.1 * s.cfg.a_lr


def test_short_search_attention_is_not_uniform(tmp_path):
    # The built-in data, default guide and settings except a short schedule and a larger arch lr.
    space = SearchSpace(num_cells=4, num_nodes=3, reduction_cells=(2,), channels=4, input_size=(32, 32),
                        num_classes=9)
    table = LatencyTable.measure(space, repeats=2, warmup=1, progress=False, heads=("aspp",))
    s = _searcher(space, table, tmp_path / "run", epochs=3, warmup=1, steps=3)
    s.run()
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    ent = [float(r["guide_attention_entropy"]) for r in rows]
    ratio = [float(r["guide_update_ratio"]) for r in rows]
    # gcn_sim_raw stays at 1 - 1e-6 here (uniform attention); the default attends from the start
    assert all(e < 0.95 for e in ent), ent
    assert all(r < 0.5 for r in ratio)  # the default's update stays below gamma * ||alpha||
    assert all(r > 0 for r in ratio)


def test_adaptive_latency_weight_in_metrics_and_resume(space, table, tmp_path):
    # Any FPS is below a 1e9..2e9 FPS window: lambda grows by the factor after each architecture epoch.
    kw = dict(adaptive_fps=(1e9, 2e9), adaptive_factor=2.0, epochs=3, warmup=1, steps=1)
    s = _searcher(space, table, tmp_path / "run", **kw)
    s.run()
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert [float(r["latency_weight"]) for r in rows] == pytest.approx([0.1, 0.1, 0.2])
    assert s.latency_weight == pytest.approx(0.4)
    st = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert st["adaptive"]["weight"] == pytest.approx(0.4)
    resumed = _searcher(space, table, tmp_path / "run", **kw)
    resumed.resume()
    assert resumed.latency_weight == pytest.approx(0.4)
    with pytest.raises(ValueError, match="adaptive_fps"):
        SearchConfig(adaptive_fps=(30.0, 10.0))


def test_metrics_chart_draws_guide_diagnostics(tmp_path):
    from gasgnn.viz import draw_metrics

    m = {"epoch": [1, 2, 3], "alpha_entropy": [2.07, 2.06, 2.0], "guide_attention_entropy": [0.9, 0.5, 0.2],
         "guide_update_ratio": [0.1, 0.3, 0.5], "guide_distinct_sources": [14.0, 9.5, 7.25]}
    fig = draw_metrics(m, tmp_path / "m.png")
    guide = [ax for ax in fig.axes if ax.get_title() == "guide diagnostics"]
    assert len(guide) == 1 and len(guide[0].lines) == 2
    src = [ax for ax in fig.axes if ax.get_title() == "guide: distinct sources per cell"]
    assert len(src) == 1 and list(src[0].lines[0].get_ydata()) == [14.0, 9.5, 7.25]
    # guide 'none': the attention columns are NaN and get no panel; the update ratio still does
    m.update(guide_attention_entropy=[math.nan] * 3, guide_distinct_sources=[math.nan] * 3)
    fig = draw_metrics(m)
    assert "guide: distinct sources per cell" not in [ax.get_title() for ax in fig.axes]
    assert [len(ax.lines) for ax in fig.axes if ax.get_title() == "guide diagnostics"] == [1]
