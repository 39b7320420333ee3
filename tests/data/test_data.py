"""Core data API: registry, colourising, transforms, loaders, search split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import gasgnn.data as gd
from gasgnn.data import (
    IMAGENET_MEAN,
    Compose,
    DatasetError,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomScale,
    Resize,
    SyntheticStreets,
    ToTensor,
    build_dataset,
    colorize,
    denormalize,
    eval_transform,
    make_loader,
    split_search,
    train_transform,
)
from gasgnn.testing import make_folder_tree


def _pair(h: int = 20, w: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An image whose pixels encode their mask label (value = 20 * label), so alignment of image
    and mask after geometric transforms can be checked exactly."""
    rng = np.random.default_rng(seed)
    mask = rng.integers(0, 10, (h, w)).astype(np.int64)
    image = np.repeat((mask * 20).astype(np.uint8)[:, :, None], 3, axis=2)
    return image, mask


# ----------------------------------------------------------------------------- registry / base
def test_registry_names_and_unknown():
    assert {"camvid", "cityscapes", "folder", "synthetic"} <= set(gd.available_datasets())
    with pytest.raises(KeyError, match="registered: .*camvid"):
        build_dataset("nope", None)


def test_build_dataset_synthetic_defaults():
    ds = build_dataset("synthetic", None, "val", num_images=3, size=(32, 40))
    image, mask = ds[0]
    assert image.shape == (3, 32, 40) and image.dtype == torch.float32
    assert mask.shape == (32, 40) and mask.dtype == torch.int64
    assert ds.num_classes == len(ds.classes) == len(ds.palette) == 9
    assert ds.split == "val" and len(ds) == 3
    assert "SyntheticStreets(3 samples" in repr(ds)


def test_ignore_index_colliding_with_class_is_rejected():
    with pytest.raises(ValueError, match="collides"):
        SyntheticStreets(num_images=1, ignore_index=3)


def test_colorize_palette_and_ignore():
    palette = [(10, 20, 30), (40, 50, 60)]
    mask = torch.tensor([[0, 1], [255, -1]])
    out = colorize(mask, palette, ignore_color=(1, 2, 3))
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [10, 20, 30] and out[0, 1].tolist() == [40, 50, 60]
    assert out[1, 0].tolist() == [1, 2, 3] and out[1, 1].tolist() == [1, 2, 3]
    batch = colorize(np.zeros((4, 3, 5), np.int64), palette)
    assert batch.shape == (4, 3, 5, 3)
    with pytest.raises(TypeError):
        colorize(np.zeros((2, 2), np.float32), palette)


def test_read_helpers_name_the_path(tmp_path):
    missing = tmp_path / "nope.png"
    with pytest.raises(DatasetError, match="nope.png") as ei:
        gd.read_image(missing)
    assert ei.value.path == missing
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(rgb)
    with pytest.raises(DatasetError, match=r"rgb\.png.*single-channel"):
        gd.read_mask(rgb)
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((4, 5), 7, np.uint8)).save(grey)
    assert gd.read_image(grey).shape == (4, 5, 3)  # grey images become RGB
    assert gd.read_mask(grey).dtype == np.uint8


def test_dataset_error_is_value_error():
    assert issubclass(DatasetError, ValueError)


# ----------------------------------------------------------------------------- transforms
def test_to_tensor_and_normalize():
    image, mask = _pair()
    x, y = ToTensor()(image, mask)
    assert x.dtype == torch.float32 and x.shape == (3, 20, 30) and float(x.max()) <= 1.0
    assert y.dtype == torch.int64 and torch.equal(y, torch.from_numpy(mask))
    xn, _ = Normalize()(x, y)
    back = denormalize(xn)
    assert back.shape == (20, 30, 3) and np.array_equal(back, image)
    xn2, _ = Normalize()(image, mask)  # numpy input is converted first
    assert torch.allclose(xn, xn2)


def test_random_crop_pads_mask_with_ignore_and_image_with_mean():
    image, mask = _pair(10, 12)
    crop = RandomCrop((16, 20), ignore_index=99, image_pad="mean", generator=torch.Generator().manual_seed(0))
    x, y = crop(image, mask)
    assert x.shape == (3, 16, 20) and y.shape == (16, 20) and x.dtype == torch.uint8
    # the original 10x12 block sits at the top-left; everything else is padding
    assert torch.equal(y[:10, :12], torch.from_numpy(mask))
    assert (y[10:] == 99).all() and (y[:, 12:] == 99).all()
    assert int((y == 99).sum()) == 16 * 20 - 10 * 12
    expect = [round(m * 255) for m in IMAGENET_MEAN]
    assert x[:, 12, 15].tolist() == expect
    # after normalisation the mean padding is zero; zero padding works on float images
    xf, yf = Compose([ToTensor(), RandomCrop(16, ignore_index=255, image_pad="zero")])(image, mask)
    assert (xf[:, 12:, :] == 0).all() and (yf[12:, :] == 255).all()
    xn, _ = train_transform((16, 20), scale_range=(1.0, 1.0), flip=False)(image, mask)
    assert xn[:, 12:, :].abs().max() < 1e-2


def test_random_crop_larger_input_keeps_alignment():
    image, mask = _pair(40, 50)
    g = torch.Generator().manual_seed(1)
    for _ in range(10):
        x, y = RandomCrop((17, 23), generator=g)(image, mask)
        assert x.shape == (3, 17, 23)
        assert torch.equal(x[0].long(), y * 20)
        assert (y != 255).all()


def test_flip_flips_image_and_mask_together():
    image, mask = _pair()
    x, y = RandomHorizontalFlip(p=1.0)(image, mask)
    assert torch.equal(y, torch.from_numpy(mask[:, ::-1].copy()))
    assert torch.equal(x[0].long(), y * 20)
    x0, y0 = RandomHorizontalFlip(p=0.0)(image, mask)
    assert torch.equal(y0, torch.from_numpy(mask))
    # p=0.5: over many draws, both outcomes occur and image/mask always agree
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(20):
        x, y = RandomHorizontalFlip(0.5, generator=g)(image, mask)
        assert torch.equal(x[0].long(), y * 20)
        seen.add(bool(torch.equal(y, torch.from_numpy(mask))))
    assert seen == {True, False}


def test_random_scale_resize_nearest_mask():
    image, mask = _pair(20, 30)
    x, y = RandomScale((2.0, 2.0))(image, mask)
    assert x.shape == (3, 40, 60) and y.shape == (40, 60) and x.dtype == torch.uint8
    assert set(y.unique().tolist()) <= set(np.unique(mask).tolist())
    assert torch.equal(y[::2, ::2], torch.from_numpy(mask))  # nearest, pixel-centre aligned
    g = torch.Generator().manual_seed(0)
    sizes = {tuple(RandomScale((0.5, 1.5), generator=g)(image, mask)[1].shape) for _ in range(8)}
    assert len(sizes) > 1
    x, y = Resize((10, 15))(image, mask)
    assert x.shape == (3, 10, 15) and y.shape == (10, 15)
    x, y = Resize(10)(image, mask)  # shorter side
    assert y.shape == (10, 15)
    x, y = Resize((7, 9))(torch.rand(3, 20, 30), torch.from_numpy(mask))
    assert x.dtype == torch.float32 and x.shape == (3, 7, 9)


@pytest.mark.parametrize("size", [(12, 14), (40, 64), (100, 30)])
def test_train_transform_output_shapes(size):
    image, mask = _pair(*size)
    x, y = train_transform((24, 32), scale_range=(0.5, 2.0))(image, mask)
    assert x.shape == (3, 24, 32) and x.dtype == torch.float32
    assert y.shape == (24, 32) and y.dtype == torch.int64
    assert set(y.unique().tolist()) <= set(np.unique(mask).tolist()) | {255}


def test_eval_transform_and_generator_determinism():
    image, mask = _pair(20, 30)
    x, y = eval_transform()(image, mask)
    assert x.shape == (3, 20, 30) and torch.equal(y, torch.from_numpy(mask))
    assert eval_transform((10, 12))(image, mask)[0].shape == (3, 10, 12)
    a = train_transform(16, generator=torch.Generator().manual_seed(5))
    b = train_transform(16, generator=torch.Generator().manual_seed(5))
    for _ in range(3):
        (xa, ya), (xb, yb) = a(image, mask), b(image, mask)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_transform_argument_validation():
    with pytest.raises(ValueError):
        RandomScale((0.0, 1.0))
    with pytest.raises(ValueError):
        RandomCrop((0, 4))
    with pytest.raises(ValueError):
        RandomCrop(4, image_pad="median")
    with pytest.raises(ValueError):
        RandomHorizontalFlip(1.5)
    with pytest.raises(ValueError, match="do not match"):
        ToTensor()(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.int64))


# ----------------------------------------------------------------------------- loaders
def _batches(loader):
    return [(x.clone(), y.clone()) for x, y in loader]


def test_make_loader_same_seed_same_batches_two_workers():
    ds = SyntheticStreets(num_images=12, size=(48, 64), seed=3, transform=train_transform((32, 32)))
    kw = dict(batch_size=4, shuffle=True, num_workers=2, drop_last=False)
    a = _batches(make_loader(ds, seed=7, **kw))
    b = _batches(make_loader(ds, seed=7, **kw))
    c = _batches(make_loader(ds, seed=8, **kw))
    assert len(a) == 3 and a[0][0].shape == (4, 3, 32, 32) and a[0][1].shape == (4, 32, 32)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert any(not torch.equal(xa, xc) for (xa, _), (xc, _) in zip(a, c))


def test_make_loader_epochs_differ_but_replay(tmp_path):
    ds = SyntheticStreets(num_images=6, size=(32, 32), transform=train_transform(24))
    loader = make_loader(ds, batch_size=3, shuffle=True, num_workers=0, seed=1)
    torch.manual_seed(0)
    e1, e2 = _batches(loader), _batches(loader)
    torch.manual_seed(0)
    r1 = _batches(make_loader(ds, batch_size=3, shuffle=True, num_workers=0, seed=1))
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(e1, e2))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(e1, r1))
    assert len(_batches(make_loader(ds, batch_size=4, drop_last=True))) == 1
    with pytest.raises(ValueError):
        make_loader(ds, batch_size=0)


def test_split_search_disjoint_covering_deterministic():
    ds = SyntheticStreets(num_images=101, size=(16, 16))
    w, a = split_search(ds, seed=0)
    wi, ai = set(w.indices), set(a.indices)
    assert not wi & ai and wi | ai == set(range(101))
    assert len(w) == 50 or len(w) == 51
    assert isinstance(w, torch.utils.data.Subset) and w.dataset is ds
    w2, a2 = split_search(ds, seed=0)
    assert list(w2.indices) == list(w.indices) and list(a2.indices) == list(a.indices)
    w3, _ = split_search(ds, seed=1)
    assert list(w3.indices) != list(w.indices)
    w4, a4 = split_search(ds, seed=0, fraction=0.8)
    assert len(w4) == 81 and len(a4) == 20
    tiny_w, tiny_a = split_search(SyntheticStreets(num_images=2, size=(16, 16)), fraction=0.99)
    assert len(tiny_w) == 1 and len(tiny_a) == 1
    with pytest.raises(ValueError):
        split_search(ds, fraction=1.0)
    with pytest.raises(ValueError):
        split_search(SyntheticStreets(num_images=1, size=(16, 16)))


def test_class_histogram_through_subset(tmp_path):
    root = make_folder_tree(tmp_path / "f", n=3, size=(8, 8))
    ds = gd.FolderDataset(root)
    counts = gd.class_histogram(ds)
    assert counts.shape == (ds.num_classes + 1,) and counts.sum() == 3 * 64
    assert counts[-1] > 0  # the fixture masks contain void pixels
    sub = torch.utils.data.Subset(ds, [2])
    assert gd.class_histogram(sub).sum() == 64
    assert np.array_equal(
        gd.class_histogram(sub),
        np.bincount(
            np.where(ds.load(2)[1] == 255, ds.num_classes, ds.load(2)[1]).ravel(),
            minlength=ds.num_classes + 1,
        ),
    )


def test_search_loaders_workers_and_pinned_memory(monkeypatch):
    # --workers auto: none on the CPU (they would take the step's cores), some with a GPU; pinned batches
    # for asynchronous host-to-GPU copies.
    monkeypatch.setattr(gd.loaders.os, "cpu_count", lambda: 16)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert gd.default_workers("cpu") == 0 and gd.default_workers("cuda") == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert gd.default_workers("cuda:3") == 1
    kw = {"num_images": 8, "size": [32, 48]}
    wl, _, vl, _ = gd.search_loaders("synthetic", None, (16, 24), 2, num_workers=0, dataset_kwargs=kw,
                                     pin_memory=True)
    assert wl(0).pin_memory and vl(0).pin_memory
    wl, *_ = gd.search_loaders("synthetic", None, (16, 24), 2, dataset_kwargs=kw)
    assert not wl(0).pin_memory


def test_kept_samples_are_decoded_once_and_identical(monkeypatch):
    # --data-arg keep_on=DEVICE: decoded once, then every epoch's transform reads the kept tensors
    kw = {"num_images": 4, "size": [32, 48]}
    plain = gd.build_dataset("synthetic", None, "train", transform=gd.train_transform((16, 24), (0.8, 1.2)), **kw)
    cached = gd.build_dataset("synthetic", None, "train", transform=gd.train_transform((16, 24), (0.8, 1.2)),
                              keep_on="cpu", **kw)
    assert cached.keep_device == torch.device("cpu") and plain.keep_device is None
    loads = []
    real = cached.load
    monkeypatch.setattr(cached, "load", lambda i: loads.append(i) or real(i))
    for epoch in range(2):
        for i in range(len(cached)):
            torch.manual_seed(epoch * 10 + i)
            a = cached[i]
            torch.manual_seed(epoch * 10 + i)
            b = plain[i]
            assert torch.equal(a[1], b[1]) and torch.allclose(a[0], b[0], atol=1e-6)
    assert loads == [0, 1, 2, 3]  # decoded once, the second epoch reads what was kept
    with pytest.raises(ValueError, match="keep_on=gpu0"):
        gd.build_dataset("synthetic", None, "train", keep_on="gpu0", **kw)
