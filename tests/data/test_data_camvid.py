"""Checks on the real CamVid copy (``../shared/data/CamVid`` or ``$GASGNN_CAMVID``); skipped when
absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gasgnn.data import CamVid, make_loader, train_transform

pytestmark = pytest.mark.camvid


def _root() -> Path:
    env = os.environ.get("GASGNN_CAMVID")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data" / "CamVid"


@pytest.fixture(scope="module")
def root() -> Path:
    r = _root()
    if not (r / "train.txt").is_file():
        pytest.skip(f"CamVid not found at {r} (set GASGNN_CAMVID)")
    return r


def test_split_sizes(root):
    sizes = {s: len(CamVid(root, s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 367, "val": 101, "test": 233}


def test_raw_labels_within_0_to_11(root):
    seen = np.zeros(256, dtype=np.int64)
    files = sorted(p for d in ("trainannot", "valannot", "testannot") for p in (root / d).glob("*.png"))
    assert len(files) == 701
    for p in files:  # full pass over all annotations (about a second)
        with Image.open(p) as im:
            assert im.mode in ("L", "P") and im.size == (480, 360), p
            seen += np.bincount(np.asarray(im).ravel(), minlength=256)
    assert set(np.flatnonzero(seen).tolist()) <= set(range(12))
    assert seen[11] > 0 and (seen[:11] > 0).all()


def test_mapping_gives_classes_and_ignore(root):
    for split in ("train", "val", "test"):
        ds = CamVid(root, split)
        for i in (0, len(ds) // 2, len(ds) - 1):
            image, mask = ds[i]
            assert image.shape == (3, 360, 480) and mask.shape == (360, 480)
            with Image.open(ds.samples[i].mask) as im:
                raw = torch.from_numpy(np.asarray(im).astype(np.int64))
            assert torch.equal(mask, torch.where(raw == 11, torch.tensor(255), raw))
            assert set(np.unique(mask.numpy()).tolist()) <= set(range(11)) | {255}


def test_train_loader_at_search_resolution(root):
    ds = CamVid(root, "train", transform=train_transform((180, 240)))
    images, masks = next(iter(make_loader(ds, batch_size=2, shuffle=True, num_workers=2, seed=0)))
    assert images.shape == (2, 3, 180, 240) and masks.shape == (2, 180, 240)
    assert set(np.unique(masks.numpy()).tolist()) <= set(range(11)) | {255}
