"""CamVid / Cityscapes / folder datasets on fixture trees in the real layouts, and bad input."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from gasgnn.data import (
    CITYSCAPES_ID_TO_TRAINID,
    CamVid,
    Cityscapes,
    DatasetError,
    FolderDataset,
    SyntheticStreets,
    build_dataset,
    read_classes_file,
    train_transform,
)
from gasgnn.testing import make_camvid_tree, make_cityscapes_tree, make_folder_tree


def _raw(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im).astype(np.int64)


# ----------------------------------------------------------------------------- CamVid
@pytest.fixture
def camvid_tree(tmp_path):
    return make_camvid_tree(tmp_path / "CamVid", {"train": 4, "val": 2, "test": 3}, size=(36, 48))


def test_camvid_lengths_shapes_and_void_mapping(camvid_tree):
    for split, n in (("train", 4), ("val", 2), ("test", 3), ("trainval", 6)):
        assert len(CamVid(camvid_tree, split)) == n
    ds = build_dataset("camvid", camvid_tree, "train")
    assert isinstance(ds, CamVid) and ds.num_classes == 11 and ds.classes[0] == "Sky"
    assert ds.classes[10] == "Bicyclist" and ds.palette[3] == (128, 64, 128)
    image, mask = ds[1]
    assert image.shape == (3, 36, 48) and image.dtype == torch.float32
    assert mask.shape == (36, 48) and mask.dtype == torch.int64
    raw = _raw(ds.samples[1].mask)
    expect = np.where(raw == 11, 255, raw)
    assert np.array_equal(mask.numpy(), expect)
    assert set(mask.unique().tolist()) == set(range(11)) | {255}
    assert ds.image_size(1) == (36, 48)
    # list files are resolved by their last two components under root
    assert ds.samples[0].image.parent == camvid_tree / "train"
    assert ds.samples[0].mask.parent == camvid_tree / "trainannot"


def test_camvid_custom_ignore_index_and_transform(camvid_tree):
    ds = CamVid(camvid_tree, "val", ignore_index=-100, transform=train_transform((20, 20), ignore_index=-100))
    _, mask = ds[0]
    assert mask.shape == (20, 20)
    assert set(mask.unique().tolist()) <= set(range(11)) | {-100}


def test_camvid_without_list_file_pairs_by_name(camvid_tree):
    (camvid_tree / "val.txt").unlink()
    ds = CamVid(camvid_tree, "val")
    assert len(ds) == 2 and all(s.mask.parent.name == "valannot" for s in ds.samples)


def test_camvid_wrong_root_and_bad_list_file(tmp_path, camvid_tree):
    with pytest.raises(DatasetError, match=str(tmp_path / "missing")):
        CamVid(tmp_path / "missing", "train")
    (camvid_tree / "test.txt").write_text("/SegNet/CamVid/test/only_one_column.png\n")
    with pytest.raises(DatasetError, match=r"test\.txt:1"):
        CamVid(camvid_tree, "test")
    with pytest.raises(ValueError, match="unknown CamVid split"):
        CamVid(camvid_tree, "bogus")


# ----------------------------------------------------------------------------- Cityscapes
@pytest.fixture
def cityscapes_tree(tmp_path):
    return make_cityscapes_tree(
        tmp_path / "cityscapes", {"train": {"aachen": 2, "bochum": 1}, "val": {"lindau": 1}}
    )


def test_cityscapes_lengths_and_id_to_trainid(cityscapes_tree):
    ds = Cityscapes(cityscapes_tree, "train")
    assert len(ds) == 3 and len(Cityscapes(cityscapes_tree, "val")) == 1
    assert ds.num_classes == 19 and ds.classes[13] == "car" and ds.palette[10] == (70, 130, 180)
    assert ds.samples[0].mask.name == "aachen_000000_000019_gtFine_labelIds.png"
    for i in range(len(ds)):
        raw = _raw(ds.samples[i].mask)
        _, mask = ds[i]
        m = mask.numpy()
        for label_id in range(34):
            sel = raw == label_id
            if sel.any():
                assert (m[sel] == CITYSCAPES_ID_TO_TRAINID.get(label_id, 255)).all(), label_id
    assert set(ds[0][1].unique().tolist()) == set(range(19)) | {255}
    assert CITYSCAPES_ID_TO_TRAINID[7] == 0 and CITYSCAPES_ID_TO_TRAINID[26] == 13
    assert CITYSCAPES_ID_TO_TRAINID[33] == 18 and len(CITYSCAPES_ID_TO_TRAINID) == 19


def test_cityscapes_missing_split_and_label(cityscapes_tree):
    with pytest.raises(DatasetError, match=str(cityscapes_tree / "leftImg8bit" / "test")):
        Cityscapes(cityscapes_tree, "test")
    label = next((cityscapes_tree / "gtFine" / "val" / "lindau").glob("*_labelIds.png"))
    label.unlink()
    with pytest.raises(DatasetError, match=label.name):
        Cityscapes(cityscapes_tree, "val")


def test_cityscapes_rejects_ids_outside_label_set(cityscapes_tree):
    ds = Cityscapes(cityscapes_tree, "val")
    raw = _raw(ds.samples[0].mask).astype(np.uint8)
    raw[0, 0] = 40  # no such Cityscapes id
    Image.fromarray(raw).save(ds.samples[0].mask)
    with pytest.raises(DatasetError, match=r"label value\(s\) 40"):
        ds[0]


# ----------------------------------------------------------------------------- folder
def test_folder_dataset_layout_classes_and_palette(tmp_path):
    root = make_folder_tree(tmp_path / "f", n=5, classes=("background", "traffic light", "car"))
    ds = build_dataset("folder", root)
    assert isinstance(ds, FolderDataset) and len(ds) == 5
    assert ds.classes == ("background", "traffic light", "car")
    names, palette = read_classes_file(root / "classes.txt")
    assert tuple(ds.palette) == tuple(palette)
    image, mask = ds[0]
    assert image.shape == (3, 24, 32) and set(mask.unique().tolist()) == {0, 1, 2, 255}


def test_folder_without_palette_jpg_images_and_splits(tmp_path):
    root = make_folder_tree(tmp_path / "f", n=4, palette=False)
    src = root / "images" / "img_000.png"
    Image.open(src).save(root / "images" / "img_000.jpg")
    src.unlink()
    ds = FolderDataset(root)
    assert len(ds) == 4 and len(set(ds.palette)) == 3 and (0, 0, 0) not in ds.palette
    assert ds.samples[0].image.suffix == ".jpg"
    (root / "val.txt").write_text("img_001\nimg_003.png\n")
    assert [s.mask.stem for s in FolderDataset(root, "val").samples] == ["img_001", "img_003"]
    make_folder_tree(root / "train", n=2)
    assert len(FolderDataset(root, "train")) == 2
    with pytest.raises(DatasetError, match="split 'test' not found"):
        FolderDataset(root, "test")


def test_folder_missing_pieces_name_the_path(tmp_path):
    root = make_folder_tree(tmp_path / "f", n=2)
    (root / "classes.txt").unlink()
    with pytest.raises(DatasetError, match=str(root / "classes.txt")):
        FolderDataset(root)
    assert len(FolderDataset(root, classes=["a", "b", "c"])) == 2
    (root / "masks" / "img_001.png").unlink()
    with pytest.raises(DatasetError, match=str(root / "masks" / "img_001.png")):
        FolderDataset(root, classes=["a", "b", "c"])
    shutil.rmtree(root / "masks")
    with pytest.raises(DatasetError, match=str(root / "masks")):
        FolderDataset(root, classes=["a", "b", "c"])


def test_classes_file_formats(tmp_path):
    p = tmp_path / "classes.txt"
    p.write_text("# comment\nroad 128 64 128\n\ntraffic light, 250, 170, 30\n")
    names, palette = read_classes_file(p)
    assert names == ["road", "traffic light"] and palette == [(128, 64, 128), (250, 170, 30)]
    p.write_text("road 1 2 3\ncar\n")
    with pytest.raises(DatasetError, match="every class or for none"):
        read_classes_file(p)
    p.write_text("\n")
    with pytest.raises(DatasetError, match="no classes"):
        read_classes_file(p)


def test_synthetic_write_roundtrips_through_folder_dataset(tmp_path):
    syn = SyntheticStreets(num_images=3, size=(24, 40), seed=4)
    syn.write(tmp_path / "syn" / "train")
    ds = FolderDataset(tmp_path / "syn", "train")
    assert ds.classes == syn.classes and ds.palette == syn.palette and len(ds) == 3
    for i in range(3):
        (a, b), (c, d) = syn.load(i), ds.load(i)
        assert np.array_equal(a, c) and np.array_equal(b, d)
    with pytest.raises(DatasetError, match="not empty"):
        syn.write(tmp_path / "syn" / "train")
    syn.write(tmp_path / "syn" / "train", overwrite=True)


# ----------------------------------------------------------------------------- bad input
def _break_samples(root):
    """Breaks four CamVid train samples, one per failure kind; returns {kind: offending path}."""
    ann, img = root / "trainannot", root / "train"
    names = sorted(p.name for p in img.iterdir())
    bad = {}
    # 1. missing file
    (ann / names[0]).unlink()
    bad["missing"] = ann / names[0]
    # 2. image/mask size mismatch
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(ann / names[1])
    bad["mismatch"] = ann / names[1]
    # 3. label outside the class set (12 is neither a class nor void 11)
    m = _raw(ann / names[2]).astype(np.uint8)
    m[5, 5] = 12
    Image.fromarray(m).save(ann / names[2])
    bad["label"] = ann / names[2]
    # 4. corrupt image: truncated PNG
    data = (img / names[3]).read_bytes()
    (img / names[3]).write_bytes(data[: len(data) // 2])
    bad["corrupt"] = img / names[3]
    return bad


@pytest.fixture
def broken_camvid(tmp_path):
    root = make_camvid_tree(tmp_path / "CamVid", {"train": 6}, size=(36, 48))
    return root, _break_samples(root)


def test_each_bad_input_raises_naming_the_file(broken_camvid):
    root, bad = broken_camvid
    with pytest.raises(DatasetError, match="missing mask file") as ei:
        CamVid(root, "train")
    assert ei.value.path == bad["missing"] and str(bad["missing"]) in str(ei.value)
    Image.fromarray(np.zeros((36, 48), np.uint8)).save(bad["missing"])  # repair, then load the rest
    ds = CamVid(root, "train")
    by_name = {s.mask.name: i for i, s in enumerate(ds.samples)}
    with pytest.raises(DatasetError, match="size mismatch") as ei:
        ds[by_name[bad["mismatch"].name]]
    assert str(bad["mismatch"]) in str(ei.value) and "48x36" in str(ei.value) and "10x10" in str(ei.value)
    with pytest.raises(DatasetError, match=r"label value\(s\) 12 outside the class set") as ei:
        ds[by_name[bad["label"].name]]
    assert str(bad["label"]) in str(ei.value)
    with pytest.raises(DatasetError, match="cannot read image") as ei:
        ds[by_name[bad["corrupt"].name]]
    assert str(bad["corrupt"]) in str(ei.value) and ei.value.path == bad["corrupt"]
    # a file that disappears after construction is reported at load time
    gone = ds.samples[by_name[bad["missing"].name]].image
    gone.unlink()
    with pytest.raises(DatasetError, match=f"missing image file: {gone}"):
        ds[by_name[bad["missing"].name]]


def test_garbage_bytes_image_is_reported(tmp_path):
    root = make_folder_tree(tmp_path / "f", n=2)
    (root / "images" / "img_000.png").write_bytes(b"this is not a png")
    with pytest.raises(DatasetError, match="img_000.png"):
        FolderDataset(root)[0]


def test_skip_mode_drops_and_reports_bad_samples(broken_camvid):
    root, bad = broken_camvid
    with pytest.warns(UserWarning, match="skipped 4 bad sample"):
        ds = CamVid(root, "train", on_error="skip")
    assert len(ds) == 2
    assert {p for p, _ in ds.skipped} == set(bad.values())
    reasons = {p: r for p, r in ds.skipped}
    assert "missing" in reasons[bad["missing"]]
    assert "size mismatch" in reasons[bad["mismatch"]]
    assert "outside the class set" in reasons[bad["label"]]
    assert "cannot read image" in reasons[bad["corrupt"]]
    for i in range(len(ds)):  # every kept sample loads
        ds[i]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clean = CamVid(make_camvid_tree(root.parent / "clean", {"train": 2}), "train", on_error="skip")
    assert clean.skipped == [] and len(clean) == 2
    with pytest.raises(ValueError, match="on_error"):
        CamVid(root, "train", on_error="ignore")


def test_validate_lists_bad_samples_without_raising(tmp_path):
    root = make_folder_tree(tmp_path / "f", n=3)
    ds = FolderDataset(root)
    assert ds.validate() == []
    m = _raw(ds.samples[2].mask).astype(np.uint8)
    m[0, 0] = 3  # 3 classes: 0..2 valid, 255 void
    Image.fromarray(m).save(ds.samples[2].mask)
    report = ds.validate(num_threads=1)
    assert len(report) == 1 and report[0][0] == ds.samples[2].mask and "3" in report[0][1]


def test_bad_sample_in_worker_process_keeps_type_and_path(tmp_path):
    from gasgnn.data import make_loader

    root = make_folder_tree(tmp_path / "f", n=2)
    m = _raw(root / "masks" / "img_001.png").astype(np.uint8)
    m[0, 0] = 7
    Image.fromarray(m).save(root / "masks" / "img_001.png")
    loader = make_loader(FolderDataset(root), batch_size=1, num_workers=2)
    with pytest.raises(DatasetError, match=str(root / "masks" / "img_001.png")):
        list(loader)
