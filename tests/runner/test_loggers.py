"""Metric logger backends: TensorBoard event files read back (scalars and images) for a search and a
training, metrics.csv the same with or without them, resume drops events logged after the checkpoint."""

import csv
import json

import pytest

from gasgnn.cli import main
from gasgnn.runner import LOGGERS, MetricLogger, RunDir, build_loggers

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

SEARCH = ["search", "--data", "synthetic", "--data-arg", "num_images=8", "--num-cells", "3", "--num-nodes", "2",
          "--reduction-cells", "1", "--channels", "4", "--input-size", "32", "32", "--num-classes", "9",
          "--warmup-epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--no-figures", "--json",
          "--seed", "1", "--threads", "1"]


def _events(run):
    acc = EventAccumulator(str(RunDir(run) / RunDir.EVENTS), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def _rows(path):
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]


def test_search_tensorboard_scalars_and_images(tmp_path, capsys):
    plain, tb = tmp_path / "plain", tmp_path / "tb"
    assert main([*SEARCH, "--epochs", "2", "--out", str(plain)]) == 0
    table = plain / RunDir.LATENCY_TABLE  # the first run's table, so both runs see the same latency term
    assert main([*SEARCH, "--epochs", "2", "--out", str(tb), "--logger", "tensorboard",
                 "--latency-table", str(table)]) == 0
    capsys.readouterr()
    acc = _events(tb)
    tags = acc.Tags()
    for name in ("train_loss", "val_miou", "expected_latency_ms", "alpha_entropy", "guide_attention_entropy",
                 "guide_update_ratio", "lr/weights", "lr/arch"):
        assert f"search/{name}" in tags["scalars"], name
    loss = acc.Scalars("search/train_loss")
    assert [e.step for e in loss] == [1, 2]
    rows = _rows(tb / RunDir.METRICS)
    assert [e.value for e in loss] == pytest.approx([float(r["train_loss"]) for r in rows], rel=1e-5)
    assert {"search/alpha", "search/cells"} <= set(tags["images"])
    img = acc.Images("search/cells")
    assert len(img) == 2 and img[0].width > 50 and img[0].encoded_image_string[:4] == b"\x89PNG"
    # metrics.csv: the same columns and values with or without the logger (the wall time aside)
    assert _rows(plain / RunDir.METRICS) == rows


def test_train_tensorboard_scalars_and_resume_purges(tmp_path, capsys):
    base = ["train", "--genotype", "hand_sep", "--data", "synthetic", "--data-arg", "num_images=4",
            "--data-arg", "size=[32,32]", "--crop", "32", "32", "--batch-size", "2", "--head-channels", "8",
            "--workers", "0", "--no-progress", "--out", str(tmp_path / "t"), "--logger", "tensorboard"]
    assert main([*base, "--epochs", "2"]) == 0
    assert main([*base, "--epochs", "3", "--resume", "--allow-changes"]) == 0
    capsys.readouterr()
    acc = _events(tmp_path / "t")
    steps = [e.step for e in acc.Scalars("train/train_loss")]
    assert sorted(set(steps)) == [1, 2, 3] and len(steps) == 3  # resumed at epoch 3, nothing twice
    assert "train/val_miou" in acc.Tags()["scalars"] and "train/lr" in acc.Tags()["scalars"]
    cfg = json.loads((tmp_path / "t" / RunDir.CONFIG).read_text())
    assert cfg["args"]["logger"] == ["tensorboard"]


def test_unknown_or_missing_backends_are_one_line(tmp_path, capsys):
    assert main([*SEARCH, "--epochs", "1", "--out", str(tmp_path / "r"), "--logger", "nope"]) == 2
    err = capsys.readouterr().err
    assert "--logger: unknown backend 'nope'" in err and "tensorboard" in err and not (tmp_path / "r").exists()
    with pytest.raises(ValueError, match="unknown backend"):
        build_loggers(["csv", "tb"], tmp_path, "search")


def test_a_registered_backend_receives_every_epoch(tmp_path, capsys):
    seen = []

    @LOGGERS.register("memory", overwrite=True)
    class MemoryLogger(MetricLogger):
        def start(self, history):
            seen.append(("start", len(history)))

        def log(self, step, scalars, images=None):
            seen.append((step, round(scalars["train_loss"], 6), images is None))

    try:
        assert main([*SEARCH, "--epochs", "2", "--out", str(tmp_path / "m"), "--logger", "memory"]) == 0
    finally:
        LOGGERS.remove("memory")
    capsys.readouterr()
    assert seen[0] == ("start", 0) and [s[0] for s in seen[1:]] == [1, 2] and all(s[2] for s in seen[1:])
