import json
import math

import pytest
import torch

from gasgnn import GASNet, SearchSpace, random_genotype
from gasgnn.data import build_dataset, eval_transform, train_transform
from gasgnn.genotype import REFERENCE_NETS, available_references, reference_genotype, resolve_genotype
from gasgnn.models import build_reference
from gasgnn.train import (
    OhemCrossEntropy,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    median_frequency_weights,
    poly_warmup,
)


@pytest.fixture
def genotype(tiny_space):
    return random_genotype(tiny_space, torch.Generator().manual_seed(1))


def _data(n_train=8, n_val=2):
    tr = build_dataset(
        "synthetic",
        split="train",
        transform=train_transform((32, 32), (0.75, 1.25)),
        num_images=n_train,
        size=(32, 40),
    )
    va = build_dataset("synthetic", split="val", transform=eval_transform(), num_images=n_val, size=(32, 40))
    return tr, va


def _cfg(**kw):
    base = dict(
        epochs=2,
        batch_size=4,
        lr=0.05,
        warmup_iters=1,
        crop_size=(32, 32),
        workers=0,
        progress=False,
        head_channels=8,
        deterministic=True,
        device="cpu",
    )
    base.update(kw)
    return TrainConfig(**base)


def test_poly_warmup():
    f = poly_warmup(100, 10, warmup_factor=0.1, power=1.0)
    assert f(0) == pytest.approx(0.1)
    assert f(5) == pytest.approx((1 - 0.05) * 0.55)
    assert f(10) == pytest.approx(0.9)
    assert f(100) == 0.0
    assert all(f(i) >= f(i + 1) for i in range(10, 99))


def test_ohem_matches_manual():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 5, generator=g)
    target = torch.randint(0, 3, (2, 4, 5), generator=g)
    target[0, 0] = 255
    per_pixel = torch.nn.functional.cross_entropy(logits, target, ignore_index=255, reduction="none")
    valid = per_pixel[target != 255]
    thresh = 0.3
    hard = [v for v in valid.tolist() if v > -math.log(thresh)]
    loss = OhemCrossEntropy(255, thresh, min_kept=1)(logits, target)
    assert loss.item() == pytest.approx(sum(hard) / len(hard), rel=1e-6)
    # min_kept larger than the hard set: the min_kept hardest pixels.
    k = len(hard) + 3
    assert 0 < len(hard) and k < valid.numel()
    loss = OhemCrossEntropy(255, thresh, min_kept=k)(logits, target)
    assert loss.item() == pytest.approx(sum(sorted(valid.tolist())[-k:]) / k, rel=1e-6)


def test_median_frequency_weights():
    class Masks:
        def __init__(self, masks):
            self.masks = masks

        def __len__(self):
            return len(self.masks)

        def load(self, i):
            return None, self.masks[i]

    import numpy as np

    a = np.array([[0, 0, 0, 1]])  # class 0: 3 px, class 1: 1 px (image of 4 px)
    b = np.array([[1, 1, 255, 255]])  # class 1: 2 px (image of 2 labelled px)
    w = median_frequency_weights(Masks([a, b]), num_classes=3)
    f0, f1 = 3 / 4, 3 / 6
    med = (f0 + f1) / 2
    assert w.tolist() == pytest.approx([med / f0, med / f1, 0.0])


def test_reference_nets(tiny_space):
    assert {"hand_sep", "hand_light", "skip_only"} <= set(available_references())
    for name in ("hand_sep", "hand_light", "skip_only"):
        g = reference_genotype(name, tiny_space)
        assert len(g) == tiny_space.num_cells
        assert all(len(c.edges) == 2 * tiny_space.num_nodes for c in g.cells)
        net = build_reference(name, num_classes=5, space=tiny_space, head="ppm", head_channels=8).eval()
        assert net(torch.randn(1, 3, 32, 32)).shape == (1, 5, 32, 32)
    last = reference_genotype("hand_sep", SearchSpace()).cells[-1]
    assert {o for _, _, o in last.edges} == {"dil_conv_3x3", "dil_conv_3x3_d4"}
    assert resolve_genotype("hand_light", tiny_space) == reference_genotype("hand_light", tiny_space)
    assert set(reference_genotype("skip_only", tiny_space).ops()) == {"skip_connect"}
    with pytest.raises(FileNotFoundError, match="nor is it a reference"):
        resolve_genotype("no_such_genotype.json")
    smp = REFERENCE_NETS["smp_unet_r18"]
    if not smp.available:
        assert "smp_unet_r18" not in available_references()
        with pytest.raises(ImportError, match="segmentation_models_pytorch"):
            build_reference("smp_unet_r18", 5)


def test_two_epochs_decrease_loss(genotype, tmp_path):
    tr, va = _data()
    res = Trainer(genotype, tr, va, _cfg(aux=True, ohem=True, ohem_min_kept=64), tmp_path).fit()
    rows = (tmp_path / "metrics.csv").read_text().strip().splitlines()
    assert rows[0] == "epoch,lr,train_loss,val_miou,val_pixel_acc,seconds" and len(rows) == 3
    losses = [float(r.split(",")[2]) for r in rows[1:]]
    assert losses[1] < losses[0]
    assert res["epochs"] == 2 and res["iterations"] == 4 and 0.0 <= res["best_miou"] <= 1.0
    for f in ("last.pt", "best.pt", "curves.png", "config.json"):
        assert (tmp_path / f).is_file()
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_equals_uninterrupted(genotype, tmp_path):
    tr, va = _data(n_train=4, n_val=1)
    cfg = _cfg(epochs=3, batch_size=2, class_weights=True)
    full = Trainer(genotype, tr, va, cfg, tmp_path / "full")
    full.fit()

    class Killed(Exception):
        pass

    def kill_after_first(trainer, row):
        if row["epoch"] == 1:
            raise Killed

    with pytest.raises(Killed):
        Trainer(genotype, tr, va, cfg, tmp_path / "cut", callbacks=[kill_after_first]).fit()
    resumed = Trainer(genotype, tr, va, cfg, tmp_path / "cut")
    resumed.fit(resume=True)
    assert resumed.epoch == 3 and resumed.iteration == full.iteration
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["train_loss"] for r in full.history] == [r["train_loss"] for r in resumed.history]
    # A changed setting is refused rather than silently mixed into the run.
    with pytest.raises(ValueError, match="lr"):
        Trainer(
            genotype, tr, va, _cfg(epochs=3, batch_size=2, class_weights=True, lr=0.1), tmp_path / "cut"
        ).fit(resume=True)


def test_nan_loss_stops_and_keeps_checkpoint(genotype, tmp_path):
    tr, _ = _data(n_train=4)

    class Poisoned(torch.utils.data.Dataset):
        num_classes, ignore_index, poison = tr.num_classes, 255, False

        def __len__(self):
            return len(tr)

        def __getitem__(self, i):
            x, y = tr[i]
            return (x * float("nan") if self.poison else x), y

    ds = Poisoned()

    def poison(trainer, row):
        ds.poison = True

    t = Trainer(genotype, ds, None, _cfg(epochs=3, batch_size=2), tmp_path, callbacks=[poison])
    msg = r"loss became nan.*last good checkpoint .*last.pt \(epoch 1\)"
    with pytest.raises(TrainingDiverged, match=msg):
        t.fit()
    assert torch.load(tmp_path / "last.pt", weights_only=False)["epoch"] == 1


def test_cli_train_then_eval_json(genotype, tmp_path, capsys):
    from gasgnn.cli import main

    gpath = tmp_path / "g.json"
    genotype.save(gpath)
    data = [
        "--data",
        "synthetic",
        "--data-arg",
        "num_images=4",
        "--data-arg",
        "size=[32,40]",
        "--workers",
        "0",
    ]
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--genotype",
            str(gpath),
            *data,
            "--out",
            str(out),
            "--epochs",
            "1",
            "--batch-size",
            "2",
            "--crop",
            "32",
            "32",
            "--head",
            "ppm",
            "--head-channels",
            "8",
            "--no-progress",
            "--json",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["epochs"] == 1 and summary["iterations"] == 2
    rc = main(
        [
            "eval",
            "--checkpoint",
            str(out / "best.pt"),
            *data,
            "--split",
            "val",
            "--flip",
            "--scales",
            "0.75",
            "1.0",
            "--save-predictions",
            str(tmp_path / "pred"),
            "--no-progress",
            "--json",
        ]
    )
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert {"miou", "pixel_acc", "mean_acc", "per_class_iou", "classes", "scales", "flip", "images"} <= set(
        res
    )
    assert len(res["per_class_iou"]) == len(res["classes"]) == 9
    assert (
        res["images"] == 4 and res["scales"] == [0.75, 1.0] and res["flip"] is True and res["head"] == "ppm"
    )
    assert len(list((tmp_path / "pred").glob("*.png"))) == 4
    # Same weights through --genotype/--weights give the same numbers.
    rc = main(
        [
            "eval",
            "--genotype",
            str(gpath),
            "--weights",
            str(out / "best.pt"),
            "--head",
            "ppm",
            "--head-channels",
            "8",
            *data,
            "--flip",
            "--scales",
            "0.75",
            "1.0",
            "--no-progress",
            "--json",
        ]
    )
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["miou"] == res["miou"]


def test_trainer_rejects_class_mismatch(genotype, tmp_path):
    from gasgnn.models import gasnet_spec

    tr, _ = _data(n_train=2)
    with pytest.raises(ValueError, match="classes"):
        Trainer(gasnet_spec(genotype, 3), tr, None, _cfg(), tmp_path)
    assert isinstance(GASNet(genotype), GASNet)
