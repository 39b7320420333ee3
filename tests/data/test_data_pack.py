"""The compact CamVid pack (gasgnn.data.pack_camvid, ``gasgnn data pack``): read back by the same CamVid class."""

import json

import numpy as np
import pytest
from PIL import Image

from gasgnn.cli import main
from gasgnn.data import PACK_FORMAT, PACK_MANIFEST, CamVid, DatasetError, pack_camvid
from gasgnn.testing import make_camvid_tree

COUNTS = {"train": 4, "val": 2, "test": 3}


def _smooth_tree(root):
    """A CamVid tree whose images are smooth gradients (random noise is JPEG's worst case, not a photo's)."""
    root = make_camvid_tree(root, COUNTS, size=(36, 48))
    y, x = np.mgrid[0:36, 0:48]
    for i, p in enumerate(sorted(root.glob("*/0001TP_*.png"))):
        if "annot" not in p.parent.name:
            img = np.stack([x * 5, y * 7, (x + y + 20 * i) % 256], -1).astype(np.uint8)
            Image.fromarray(img).save(p)
    return root


@pytest.fixture
def tree(tmp_path):
    return _smooth_tree(tmp_path / "CamVid")


def test_pack_round_trips_through_camvid(tree, tmp_path):
    info = pack_camvid(tree, tmp_path / "pack", quality=90, progress=False)
    pack = tmp_path / "pack"
    assert info["format"] == PACK_FORMAT and info["splits"] == COUNTS and info["labels_lossless"]
    assert json.loads((pack / PACK_MANIFEST).read_text())["quality"] == 90
    assert info["bytes"] == pytest.approx(sum(p.stat().st_size for p in pack.rglob("*") if p.is_file()), rel=0.01)
    for split in COUNTS:
        orig, packed = CamVid(tree, split=split), CamVid(pack, split=split)
        assert len(packed) == len(orig) == COUNTS[split]
        # the same pairs in the same order, images now JPEG, labels PNG
        assert [s.image.stem for s in packed.samples] == [s.image.stem for s in orig.samples]
        assert all(s.image.suffix == ".jpg" and s.mask.suffix == ".png" for s in packed.samples)
        for i in range(len(orig)):
            (a, ma), (b, mb) = orig.load(i), packed.load(i)
            np.testing.assert_array_equal(ma, mb)  # labels lossless (void too)
            assert a.shape == b.shape and np.abs(a.astype(int) - b).mean() < 4  # JPEG q=90 of a smooth image
        raw_o = np.asarray(Image.open(orig.samples[0].mask))
        np.testing.assert_array_equal(np.asarray(Image.open(packed.samples[0].mask)), raw_o)  # raw values too
    lines = (pack / "train.txt").read_text().splitlines()
    assert lines[0] == "/SegNet/CamVid/train/0001TP_train_0000.jpg /SegNet/CamVid/trainannot/0001TP_train_0000.png"
    assert 0 < info["image_mad"] < 4 and info["image_psnr_db"] > 30


def test_quality_trades_size_for_fidelity(tree, tmp_path):
    lo = pack_camvid(tree, tmp_path / "lo", quality=30, progress=False)
    hi = pack_camvid(tree, tmp_path / "hi", quality=95, progress=False)
    assert lo["image_bytes"] < hi["image_bytes"] and lo["image_mad"] > hi["image_mad"]
    assert lo["label_bytes"] == hi["label_bytes"]


def test_camvid_pairs_jpg_images_without_list_files(tree, tmp_path):
    pack_camvid(tree, tmp_path / "pack", progress=False)
    for split in COUNTS:
        (tmp_path / "pack" / f"{split}.txt").unlink()
    ds = CamVid(tmp_path / "pack", split="test")
    assert len(ds) == COUNTS["test"] and ds.samples[0].image.suffix == ".jpg"
    np.testing.assert_array_equal(ds.load(0)[1], CamVid(tree, split="test").load(0)[1])


def test_existing_out_is_refused_then_replaced_whole(tree, tmp_path):
    out = tmp_path / "pack"
    pack_camvid(tree, out, quality=50, progress=False)
    with pytest.raises(ValueError, match="--out .* exists; pass --overwrite"):
        pack_camvid(tree, out, progress=False)
    (out / "mine.txt").write_text("an earlier file")
    pack_camvid(tree, out, quality=80, overwrite=True, progress=False)
    assert json.loads((out / PACK_MANIFEST).read_text())["quality"] == 80
    assert not (out / "mine.txt").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left


def test_a_bad_sample_leaves_no_pack(tree, tmp_path):
    """The pack appears only when complete: a corrupt image midway leaves neither --out nor a temporary folder."""
    (tree / "val" / "0001TP_val_0001.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="0001TP_val_0001.png"):
        pack_camvid(tree, tmp_path / "pack", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CamVid"]


def test_bad_arguments(tree, tmp_path):
    with pytest.raises(DatasetError, match="CamVid root not found: directory .*nowhere"):
        pack_camvid(tmp_path / "nowhere", tmp_path / "pack", progress=False)
    with pytest.raises(ValueError, match="--quality must be in 1..100"):
        pack_camvid(tree, tmp_path / "pack", quality=0, progress=False)
    with pytest.raises(ValueError, match="inside the CamVid root"):
        pack_camvid(tree, tree / "pack", progress=False)


def test_command(tree, tmp_path, capsys):
    out = tmp_path / "pack"
    assert main(["data", "pack", "--root", str(tree), "--out", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["out"] == str(out) and info["splits"] == COUNTS and info["quality"] == 85
    assert main(["data", "pack", "--root", str(tree), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gasgnn data: error: --out") and "--overwrite" in err and "\n" not in err
    assert main(["data", "pack", "--root", str(tmp_path / "missing"), "--out", str(tmp_path / "p2")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"gasgnn data: error: CamVid root not found: directory {tmp_path / 'missing'} does not exist"
    assert main(["data", "pack", "--root", str(tree), "--out", str(out), "--overwrite", "--no-progress"]) == 0
    assert "9 images (train 4, val 2, test 3)" in capsys.readouterr().out


def test_a_killed_pack_leaves_no_half_pack(tree, tmp_path):
    """SIGKILL midway (a device's time limit, a user's ^C twice): ``--out`` never exists half written."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = (
        "import sys, time\n"
        "import gasgnn.data.pack as pk\n"
        "enc, n = pk._encode, [0]\n"
        "def slow(*a):\n"
        "    n[0] += 1\n"
        "    if n[0] > 3: time.sleep(60)\n"
        "    return enc(*a)\n"
        "pk._encode = slow\n"
        "pk.pack_camvid(sys.argv[1], sys.argv[2], workers=1, progress=False)\n"
    )
    out = tmp_path / "pack"
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", script, str(tree), str(out)],
                            env=dict(os.environ, PYTHONPATH=str(repo)))
    try:
        deadline = time.monotonic() + 120
        written = []
        while time.monotonic() < deadline and len(written) < 3:
            time.sleep(0.1)
            written = [p for p in tmp_path.rglob("*.jpg")]
        assert len(written) >= 3, "the pack wrote nothing in time"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not out.exists()
    assert CamVid(tree, split="train")  # the source is untouched
