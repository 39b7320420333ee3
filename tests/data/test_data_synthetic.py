"""The generated street-scene dataset: determinism, content, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from gasgnn.data import SYNTH_CLASSES, SyntheticStreets, class_histogram, make_loader, render_street


def test_same_seed_is_byte_identical_in_any_order():
    a = SyntheticStreets(num_images=6, size=(48, 64), seed=11)
    b = SyntheticStreets(num_images=6, size=(48, 64), seed=11)
    first = [a.generate(i) for i in range(6)]
    for i in reversed(range(6)):  # other instance, other order
        img, mask = b.generate(i)
        assert img.tobytes() == first[i][0].tobytes() and mask.tobytes() == first[i][1].tobytes()
    assert first[0][0].dtype == np.uint8 and first[0][0].shape == (48, 64, 3)
    assert first[0][1].dtype == np.uint8 and first[0][1].shape == (48, 64)


def test_different_seed_or_split_gives_different_scenes():
    a = SyntheticStreets(num_images=3, size=(48, 64), seed=0)
    b = SyntheticStreets(num_images=3, size=(48, 64), seed=1)
    v = SyntheticStreets(split="val", num_images=3, size=(48, 64), seed=0)
    for i in range(3):
        assert a.generate(i)[0].tobytes() != b.generate(i)[0].tobytes()
        assert a.generate(i)[0].tobytes() != v.generate(i)[0].tobytes()
    assert a.generate(0)[0].tobytes() != a.generate(1)[0].tobytes()


def test_independent_of_worker_count():
    ds = SyntheticStreets(num_images=8, size=(32, 48), seed=5)
    single = [(x.clone(), y.clone()) for x, y in make_loader(ds, batch_size=3, num_workers=0)]
    multi = [(x.clone(), y.clone()) for x, y in make_loader(ds, batch_size=3, num_workers=2)]
    assert len(single) == len(multi) == 3
    for (xa, ya), (xb, yb) in zip(single, multi):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_labels_cover_all_classes_at_several_scales():
    ds = SyntheticStreets(num_images=24, size=(96, 128), seed=0)
    counts = class_histogram(ds)
    assert counts.shape == (len(SYNTH_CLASSES) + 1,) and counts[-1] == 0  # no void pixels
    assert (counts[:-1] > 0).all(), dict(zip(SYNTH_CLASSES, counts))
    frac = counts[:-1] / counts.sum()
    big = {SYNTH_CLASSES.index(c) for c in ("sky", "building", "road")}
    small = {SYNTH_CLASSES.index(c) for c in ("pole", "lane marking", "pedestrian")}
    assert min(frac[i] for i in big) > max(frac[i] for i in small)


def test_any_size_and_arguments():
    for h, w in ((16, 16), (31, 77), (120, 40)):
        img, mask = render_street(np.random.default_rng(0), h, w)
        assert img.shape == (h, w, 3) and mask.shape == (h, w) and mask.max() < len(SYNTH_CLASSES)
    assert len(SyntheticStreets()) == 256 and len(SyntheticStreets(split="test")) == 64
    assert SyntheticStreets(size=40).size == (40, 40)
    assert SyntheticStreets(size=(40, 56)).image_size(3) == (40, 56)
    with pytest.raises(ValueError):
        SyntheticStreets(size=(8, 64))
    with pytest.raises(IndexError):
        SyntheticStreets(num_images=2, size=(16, 16))[2]
    ds = SyntheticStreets(num_images=2, size=(16, 16), cache=True, seed=-3)
    assert torch.equal(ds[1][1], ds[1][1]) and len(ds._cache) == 1


def test_colour_alone_is_ambiguous():
    """Road and sidewalk share grey tones, so a per-pixel colour rule cannot separate them."""
    ds = SyntheticStreets(num_images=16, size=(64, 80), seed=2)
    road, walk = [], []
    for i in range(16):
        img, mask = ds.generate(i)
        road.append(img[mask == SYNTH_CLASSES.index("road")].mean(1))
        walk.append(img[mask == SYNTH_CLASSES.index("sidewalk")].mean(1))
    r, s = np.concatenate(road), np.concatenate(walk)
    lo, hi = max(r.min(), s.min()), min(r.max(), s.max())
    overlap = ((s >= lo) & (s <= hi)).mean()
    assert overlap > 0.8  # most sidewalk pixels have a brightness some road pixel also has


def test_generation_is_fast():
    ds = SyntheticStreets(num_images=64, size=(128, 160), seed=0)
    t = time.process_time()  # CPU time: robust to other processes sharing the machine
    for i in range(64):
        ds.generate(i)
    assert time.process_time() - t < 5.0  # ~0.6 s on one idle core
