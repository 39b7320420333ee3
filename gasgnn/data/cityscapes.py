"""Cityscapes (fine annotations, 19 train ids)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from .base import JointTransform, OnError, PairedFileDataset, Sample
from .io import DatasetError, fake_image, fake_labels, require_dir
from .registry import register_dataset

__all__ = ["Cityscapes", "CITYSCAPES_CLASSES", "CITYSCAPES_PALETTE", "CITYSCAPES_ID_TO_TRAINID",
           "make_cityscapes_tree"]

#: The 19 Cityscapes evaluation classes, in train-id order.
CITYSCAPES_CLASSES: tuple[str, ...] = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)
#: The official Cityscapes colours, per train id.
CITYSCAPES_PALETTE: tuple[tuple[int, int, int], ...] = (
    (128, 64, 128),
    (244, 35, 232),
    (70, 70, 70),
    (102, 102, 156),
    (190, 153, 153),
    (153, 153, 153),
    (250, 170, 30),
    (220, 220, 0),
    (107, 142, 35),
    (152, 251, 152),
    (70, 130, 180),
    (220, 20, 60),
    (255, 0, 0),
    (0, 0, 142),
    (0, 0, 70),
    (0, 60, 100),
    (0, 80, 100),
    (0, 0, 230),
    (119, 11, 32),
)
#: Official label id -> train id table (``cityscapesScripts`` ``labels.py``); every other id is
#: ignored.
CITYSCAPES_ID_TO_TRAINID: dict[int, int] = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip
#: Largest label id of the official label set (ids are 0..33; 255 is also accepted as void).
CITYSCAPES_MAX_ID: int = 33

SPLITS = ("train", "val", "test")
IMG_SUFFIX = "_leftImg8bit.png"


def make_cityscapes_tree(
    root: str | os.PathLike,
    cities: Mapping[str, Mapping[str, int]] | None = None,
    size: tuple[int, int] = (32, 64),
    seed: int = 0,
) -> Path:
    """Writes a tiny Cityscapes tree (``leftImg8bit/{split}/{city}/..._leftImg8bit.png`` and
    ``gtFine/{split}/{city}/..._gtFine_labelIds.png``), Cityscapes' test fixture; label ids cover 0..33.

    Args:
        root (str or PathLike): Destination directory.
        cities (mapping, optional): ``{split: {city: n_images}}``.
            (default: ``{"train": {"aachen": 2, "bochum": 1}, "val": {"frankfurt": 1}}``)
        size ((int, int), optional): Image ``(height, width)``. (default: ``(32, 64)``)
        seed (int, optional): Random seed. (default: :obj:`0`)

    Returns:
        Path: ``root``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    cities = cities or {"train": {"aachen": 2, "bochum": 1}, "val": {"frankfurt": 1}}
    values = np.arange(CITYSCAPES_MAX_ID + 1)
    for split, per_city in cities.items():
        for city, n in per_city.items():
            img_dir = root / "leftImg8bit" / split / city
            ann_dir = root / "gtFine" / split / city
            img_dir.mkdir(parents=True, exist_ok=True)
            ann_dir.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                stem = f"{city}_{i:06d}_000019"
                fake_image(rng, size).save(img_dir / f"{stem}_leftImg8bit.png")
                Image.fromarray(fake_labels(rng, size, values)).save(ann_dir / f"{stem}_gtFine_labelIds.png")
    return root


@register_dataset("cityscapes", fixture=make_cityscapes_tree,
                  root_help="the Cityscapes folder (leftImg8bit/, gtFine/)")
class Cityscapes(PairedFileDataset):
    """The Cityscapes urban-scene dataset with fine annotations.

    Expected layout::

        root/
          leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png
          gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png

    Label ids are mapped to the 19 train ids with the official table
    (:data:`CITYSCAPES_ID_TO_TRAINID`); the other official ids (0..33) and 255 become
    ``ignore_index``; any other value is reported as a bad label.

    Args:
        root (str or PathLike): Dataset root.
        split (str, optional): ``"train"``, ``"val"`` or ``"test"`` (test labels are all void).
            (default: ``"train"``)
        transform (callable, optional): Joint transform. (default: :func:`eval_transform`)
        ignore_index (int, optional): Label of ignored pixels in returned masks. (default: :obj:`255`)
        on_error (str, optional): ``"raise"`` or ``"skip"``; see :class:`PairedFileDataset`.
            (default: ``"raise"``)

    Raises:
        DatasetError: if the root or a split directory is missing (naming it), or a label file is
            missing for an image.
    """

    name = "cityscapes"

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str | None = "train",
        transform: JointTransform | None = None,
        ignore_index: int = 255,
        on_error: OnError = "raise",
    ) -> None:
        if root is None:
            raise DatasetError("Cityscapes needs a root directory (got root=None)")
        self.root = Path(root).expanduser()
        self.split = split or "train"
        if self.split not in SPLITS:
            raise ValueError(f"unknown Cityscapes split {self.split!r}; expected one of {SPLITS}")
        require_dir(self.root, "Cityscapes root")
        img_dir = require_dir(self.root / "leftImg8bit" / self.split, f"Cityscapes {self.split} images")
        ann_dir = require_dir(self.root / "gtFine" / self.split, f"Cityscapes {self.split} annotations")
        samples = []
        for city in sorted(p for p in img_dir.iterdir() if p.is_dir()):
            for img in sorted(city.glob(f"*{IMG_SUFFIX}")):
                stem = img.name[: -len(IMG_SUFFIX)]
                samples.append(Sample(img, ann_dir / city.name / f"{stem}_gtFine_labelIds.png"))
        if not samples:
            raise DatasetError(f"no *{IMG_SUFFIX} images found under {img_dir}", img_dir)
        void = [i for i in range(CITYSCAPES_MAX_ID + 1) if i not in CITYSCAPES_ID_TO_TRAINID] + [255]
        super().__init__(
            samples,
            CITYSCAPES_CLASSES,
            CITYSCAPES_PALETTE,
            label_map=CITYSCAPES_ID_TO_TRAINID,
            void_values=void,
            transform=transform,
            ignore_index=ignore_index,
            on_error=on_error,
        )
