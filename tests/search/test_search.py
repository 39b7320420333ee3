import argparse
import csv
import json

import pytest
import torch

from gasgnn import Genotype
from gasgnn.commands._data import search_loaders
from gasgnn.search import SearchConfig, SearchDivergedError, Searcher


def _loaders(seed=0):
    args = argparse.Namespace(data="synthetic", root=None, data_arg=["num_images=8"], scale_range=None, workers=0)
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


@pytest.mark.slow  # every guide's search step is already covered in test_ggm.py
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
    s2.allow_changes = True  # one more epoch than the checkpoint's run: a recorded change
    s2.resume()
    with torch.no_grad():
        s2.net.alpha.fill_(float("nan"))
    with pytest.raises(SearchDivergedError, match="last good checkpoint"):
        s2.run()
    assert (tmp_path / "nan" / "checkpoint.pt").read_bytes() == ck


@pytest.mark.parametrize("random", [False, True])
def test_search_command(space, table, tmp_path, random, capsys):
    from gasgnn.cli import main

    tpath = tmp_path / "table.json"
    table.save(tpath)
    out = tmp_path / ("random" if random else "gas")
    argv = ["search", "--data", "synthetic", "--data-arg", "num_images=8", "--num-cells", "3", "--num-nodes", "2",
            "--reduction-cells", "1", "--channels", "4", "--input-size", "32", "32", "--num-classes", "9",
            "--epochs", "2", "--warmup-epochs", "1", "--steps-per-epoch", "1", "--latency-table", str(tpath),
            "--out", str(out), "--no-figures", "--json"]
    if random:
        argv += ["--random", "--samples", "2", "--steps-per-sample", "1"]
    else:
        argv += ["--crop", "24", "32"]  # train at a smaller crop than the latency resolution
    assert main(argv) == 0
    res = json.loads(capsys.readouterr().out)
    assert Genotype.load(res["genotype"]).space.num_cells == 3
    assert res["predicted_latency_ms"] > 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["guide"] == ("random" if random else "slot_sim")  # the default guide
    if not random:
        assert cfg["data"]["crop"] == [24, 32] and cfg["space"]["input_size"] == [32, 32]


def test_search_config_errors():
    with pytest.raises(ValueError, match="warmup_epochs"):
        SearchConfig(epochs=2, warmup_epochs=3)
    with pytest.raises(ValueError, match="relaxation"):
        SearchConfig(relaxation="hard")


def test_latency_term_ignores_none(space, table):
    s = _searcher(space, table, None)
    a = s.net.alpha.detach().clone().requires_grad_(True)
    s.latency_term(a)[0].backward()
    none = space.ops.index("none")
    assert a.grad[:, none].abs().sum() == 0 and a.grad.abs().sum() > 0
    s = _searcher(space, table, None, latency_without_none=False)
    a.grad = None
    s.latency_term(a)[0].backward()
    assert a.grad[:, none].abs().sum() > 0


def test_train_briefly_reshuffles_every_pass(space):
    # itertools.cycle would replay the first pass; a DataLoader must be iterated again (new order and
    # augmentations), so 5 steps on a 2-batch loader take 3 passes.
    from gasgnn.genotype import random_genotype
    from gasgnn.search import train_briefly

    class Passes:
        def __init__(self):
            self.passes, self.seen = 0, []

        def __iter__(self):
            self.passes += 1
            for _ in range(2):
                x = torch.randn(1, 3, 32, 32)
                self.seen.append(x)
                yield x, torch.randint(0, 9, (1, 32, 32))

    train = Passes()
    g = random_genotype(space, torch.Generator().manual_seed(0))
    train_briefly(g, train, [(torch.randn(1, 3, 32, 32), torch.zeros(1, 32, 32, dtype=torch.long))], steps=5)
    assert train.passes == 3 and len(train.seen) == 5


def test_search_command_adaptive_latency_window(space, table, tmp_path, capsys):
    from gasgnn.cli import main

    tpath = tmp_path / "table.json"
    table.save(tpath)
    argv = ["search", "--data", "synthetic", "--data-arg", "num_images=8", "--num-cells", "3", "--num-nodes", "2",
            "--reduction-cells", "1", "--channels", "4", "--input-size", "32", "32", "--num-classes", "9",
            "--epochs", "3", "--warmup-epochs", "1", "--steps-per-epoch", "1", "--latency-table", str(tpath),
            "--out", str(tmp_path / "a"), "--no-figures", "--json", "--latency-ms-window", "20", "10"]
    assert main(argv) == 0
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["search"]["adaptive_fps"] == [50.0, 100.0]  # 10-20 ms = 50-100 FPS
    assert "adaptive" in torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    # the summary reports the lambda the search ended with, as metrics.csv's last row does
    last = list(csv.DictReader((tmp_path / "a" / "metrics.csv").open()))[-1]
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert float(last["latency_weight"]) != pytest.approx(0.01)  # the window moved lambda
    assert summary["latency_weight"] == pytest.approx(float(last["latency_weight"]), rel=1e-4)
    assert main(argv + ["--overwrite", "--latency-fps-window", "1", "2"]) != 0  # both windows: an error
    assert "not both" in capsys.readouterr().err


def test_allow_changes_keeps_guide_decay_and_applies_adaptive_window(space, table, tmp_path):
    s = _searcher(space, table, tmp_path / "ch", adaptive_fps=(1.0, 2.0), guide_weight_decay=0.0)
    s.cfg.epochs = 2
    s.run()
    s2 = _searcher(space, table, tmp_path / "ch", adaptive_fps=(100.0, 200.0), adaptive_factor=1.5,
                   guide_weight_decay=0.0, a_lr=1e-3)
    s2.allow_changes = True
    s2.resume()
    wd = {g["name"]: g["weight_decay"] for g in s2.a_opt.param_groups}
    assert wd == {"alpha": s2.cfg.a_weight_decay, "guide": 0.0}
    assert all(g["lr"] == 1e-3 for g in s2.a_opt.param_groups)
    assert s2.adaptive.fps_window == (100.0, 200.0) and s2.adaptive.factor == 1.5


def test_random_search_refuses_resume(tmp_path, capsys):
    from gasgnn.cli import main

    argv = ["search", "--random", "--resume", "--data", "synthetic", "--out", str(tmp_path / "r"), "--no-figures"]
    assert main(argv) == 2
    assert "cannot be resumed" in capsys.readouterr().err


def test_search_command_sets_every_config_field(tmp_path):
    from gasgnn.cli import main

    # no --latency-table: the search measures one (for both heads) in its run directory
    argv = ["search", "--data", "synthetic", "--data-arg", "num_images=8", "--num-cells", "3", "--num-nodes", "2",
            "--reduction-cells", "1", "--channels", "4", "--input-size", "32", "32", "--num-classes", "9",
            "--epochs", "1", "--warmup-epochs", "1", "--steps-per-epoch", "1",
            "--out", str(tmp_path / "a"), "--no-figures", "--json", "--head", "ppm", "--latency-with-none",
            "--w-lr-min", "0.002", "--w-momentum", "0.8", "--w-weight-decay", "1e-4", "--a-weight-decay", "0",
            "--grad-clip", "3"]
    assert main(argv) == 0
    got = json.loads((tmp_path / "a" / "config.json").read_text())["search"]
    want = {"head": "ppm", "latency_without_none": False, "w_lr_min": 0.002, "w_momentum": 0.8,
            "w_weight_decay": 1e-4, "a_weight_decay": 0.0, "grad_clip": 3.0}
    assert {k: got[k] for k in want} == want


def test_deterministic_leaves_cudnn_benchmark_off(monkeypatch):
    # cudnn.benchmark picks conv algorithms by timing them: fast, but not reproducible.
    from gasgnn.search import compiled_forward

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    compiled_forward(torch.nn.Identity(), SearchConfig(deterministic=True), torch.device("cuda"))
    assert torch.backends.cudnn.benchmark is False
    compiled_forward(torch.nn.Identity(), SearchConfig(), torch.device("cuda"))
    assert torch.backends.cudnn.benchmark is True
