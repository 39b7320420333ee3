import argparse
import csv
import json

import pytest
import torch

from gasgnn import Genotype, SearchSpace
from gasgnn.commands._data import search_loaders
from gasgnn.latency import LatencyTable
from gasgnn.search import SearchConfig, SearchDivergedError, Searcher


@pytest.fixture(scope="module")
def space():
    return SearchSpace(num_cells=3, num_nodes=2, reduction_cells=(1,), channels=4, input_size=(32, 32), num_classes=9)


@pytest.fixture(scope="module")
def table(space):
    return LatencyTable.measure(space, repeats=2, warmup=1, progress=False, heads=("aspp",))


def _loaders(seed=0):
    args = argparse.Namespace(data="synthetic", root=None, num_images=8, scale_range=None, workers=0)
    return search_loaders(args, (32, 32), batch_size=2, seed=seed)


def _searcher(space, table, run_dir, **kw):
    wl, al, vl, _ = _loaders()
    cfg = SearchConfig(epochs=3, warmup_epochs=1, batch_size=2, steps_per_epoch=2, deterministic=True,
                       latency_weight=0.1, **kw)
    return Searcher(space, cfg, wl, al, vl, table=table, run_dir=run_dir, progress=False)


def test_search_writes_run_dir(space, table, tmp_path):
    s = _searcher(space, table, tmp_path / "run")
    alpha0 = s.net.alpha.detach().clone()
    g = s.run()
    run = tmp_path / "run"
    for f in ("config.json", "metrics.csv", "checkpoint.pt", "genotype.json", "alpha_history.pt",
              "latency_table.json", "summary.json"):
        assert (run / f).is_file(), f
    assert Genotype.load(run / "genotype.json") == g
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert torch.load(run / "alpha_history.pt").shape == (3, space.num_arch_nodes, space.num_ops)
    # alpha is frozen during warm-up and moves afterwards
    hist = torch.load(run / "alpha_history.pt")
    assert not torch.equal(s.net.alpha.detach(), alpha0)
    assert json.loads((run / "summary.json").read_text())["predicted_latency_ms"] > 0
    assert float(rows[-1]["expected_latency_ms"]) > 0 and hist.isfinite().all()


def test_kill_and_resume_equals_uninterrupted(space, table, tmp_path):
    ref = _searcher(space, table, tmp_path / "ref")
    g_ref = ref.run()

    killed = _searcher(space, table, tmp_path / "killed")
    orig = killed._end_epoch

    def end_epoch_then_die(epoch, *a):
        orig(epoch, *a)
        if epoch == 1:  # after the checkpoint of epoch 2
            raise KeyboardInterrupt

    killed._end_epoch = end_epoch_then_die
    with pytest.raises(KeyboardInterrupt):
        killed.run()
    torch.manual_seed(1234)  # the resumed process starts with another RNG state
    resumed = _searcher(space, table, tmp_path / "killed")
    g_res = resumed.run(resume=True)
    assert g_res == g_ref
    assert torch.equal(resumed.net.alpha, ref.net.alpha)
    for (n, a), (_, b) in zip(resumed.net.state_dict().items(), ref.net.state_dict().items()):
        assert torch.equal(a, b), n
    for (n, a), (_, b) in zip(resumed.guide.state_dict().items(), ref.guide.state_dict().items()):
        assert torch.equal(a, b), n
    assert (tmp_path / "killed" / "metrics.csv").read_text().count("\n") == 4


@pytest.mark.parametrize("guide", ["gcn_sim", "fc", "none", "gat"])
def test_guides_in_search(space, table, guide):
    s = _searcher(space, table, None, guide=guide)
    s.cfg.epochs = 2
    g = s.run()
    assert len(g.cells) == 3


def test_gumbel_and_forms(space, table):
    s = _searcher(space, table, None, relaxation="gumbel", tau_start=2.0, tau_end=0.5, latency_form="target",
                  target_ms=0.001)
    assert s.tau(0) == 2.0 and abs(s.tau(2) - 0.5) < 1e-9
    s.run()


def test_nan_stops_and_keeps_checkpoint(space, table, tmp_path):
    s = _searcher(space, table, tmp_path / "nan")
    s.cfg.epochs = 2
    s.run()
    ck = (tmp_path / "nan" / "checkpoint.pt").read_bytes()
    s2 = _searcher(space, table, tmp_path / "nan")
    s2.cfg.epochs = 3
    s2.load_checkpoint()
    with torch.no_grad():
        s2.net.alpha.fill_(float("nan"))
    with pytest.raises(SearchDivergedError, match="last good checkpoint"):
        s2.run()
    assert (tmp_path / "nan" / "checkpoint.pt").read_bytes() == ck
