"""Divergence is judged on the model, not only the loss (issue 19, finding 3): non-finite weights or
BatchNorm statistics stop the run, no checkpoint is written from them, and the message names a
checkpoint that exists."""

import argparse

import pytest
import torch

from gasgnn.commands._data import search_loaders
from gasgnn.genotype import random_genotype
from gasgnn.search import SearchConfig, SearchDivergedError, Searcher
from gasgnn.train import Trainer, TrainingDiverged
from tests.train.test_train import _cfg, _data


def _poison_bn(model):
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_var.fill_(float("inf"))


def test_train_stops_on_nonfinite_bn_and_keeps_last_good(tiny_space, tmp_path):
    g = random_genotype(tiny_space, torch.Generator().manual_seed(1))
    tr, va = _data(n_train=4, n_val=1)

    def poison_after_first(trainer, row):
        if row["epoch"] == 1:
            _poison_bn(trainer.model)  # the loss of a train-mode step stays finite

    t = Trainer(g, tr, va, _cfg(epochs=2, batch_size=2), tmp_path, callbacks=[poison_after_first])
    with pytest.raises(TrainingDiverged, match=rf"running_var.*last good checkpoint {tmp_path / 'last.pt'}"):
        t.fit()
    st = torch.load(tmp_path / "last.pt", weights_only=False)
    assert st["epoch"] == 1 and all(v.isfinite().all() for v in st["model"].values() if v.is_floating_point())


def test_train_with_no_checkpoint_says_so(tiny_space, tmp_path):
    g = random_genotype(tiny_space, torch.Generator().manual_seed(1))
    tr, va = _data(n_train=4, n_val=1)
    t = Trainer(g, tr, va, _cfg(epochs=1, batch_size=2), tmp_path)
    t._setup()
    _poison_bn(t.model)
    with pytest.raises(TrainingDiverged, match="no checkpoint was written yet"):
        t.check_modules(model=t.model)


def test_empty_validation_split_is_refused(tiny_space):
    g = random_genotype(tiny_space, torch.Generator().manual_seed(1))
    tr, _ = _data(n_train=4)
    with pytest.raises(ValueError, match="--val-split none"):
        Trainer(g, tr, [], _cfg())


def _searcher(cfg, run_dir=None):
    """A Searcher of a 3-cell space on 8 generated images, and its weights loader."""
    from gasgnn import SearchSpace

    space = SearchSpace(num_cells=3, num_nodes=2, reduction_cells=(1,), channels=4, input_size=(32, 32), num_classes=9)
    args = argparse.Namespace(data="synthetic", root=None, data_arg=["num_images=8"], scale_range=None, workers=0)
    wl, al, vl, _ = search_loaders(args, (32, 32), batch_size=2, seed=0)
    return Searcher(space, cfg, wl, al, vl, run_dir=run_dir, progress=False), wl


def test_search_checks_bn_stats_and_names_only_existing_checkpoints(tmp_path):
    s, _ = _searcher(SearchConfig(epochs=2, warmup_epochs=1, batch_size=2, steps_per_epoch=1), tmp_path / "s")
    _poison_bn(s.net)
    with pytest.raises(SearchDivergedError, match="running_var.*no checkpoint was written yet"):
        s.run()
    assert not (tmp_path / "s" / "checkpoint.pt").exists()


def test_search_config_refuses_nan_and_zero_steps():
    with pytest.raises(ValueError, match="latency-weight"):
        SearchConfig(latency_weight=float("nan"))
    with pytest.raises(ValueError, match="--steps-per-epoch"):
        SearchConfig(steps_per_epoch=0)


def test_checked_at_every_step_not_only_at_epoch_end(tiny_space, tmp_path):
    """The per-step check stops within the epoch (long epochs do not run on with broken statistics)."""
    g = random_genotype(tiny_space, torch.Generator().manual_seed(1))
    tr, va = _data(n_train=4, n_val=1)
    t = Trainer(g, tr, va, _cfg(epochs=1, batch_size=2), tmp_path)
    t._setup()
    _poison_bn(t.model)
    with pytest.raises(TrainingDiverged, match="running_var"):
        t.train_epoch()

    s, wl = _searcher(SearchConfig(epochs=1, warmup_epochs=0, batch_size=2))
    _poison_bn(s.net)
    with pytest.raises(SearchDivergedError, match="running_var"):
        s.step(next(iter(wl(0))), None, 1.0)
