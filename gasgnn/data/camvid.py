"""CamVid in the SegNet layout (11 classes, 480x360)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from .base import JointTransform, OnError, PairedFileDataset, Sample
from .io import DatasetError, fake_image, fake_labels, require_dir
from .registry import register_dataset

__all__ = ["CamVid", "CAMVID_CLASSES", "CAMVID_PALETTE", "CAMVID_VOID", "default_camvid_root", "make_camvid_tree"]

#: The 11 CamVid classes of the SegNet benchmark, in label order.
CAMVID_CLASSES: tuple[str, ...] = (
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
)
#: The standard SegNet CamVid colours, per class.
CAMVID_PALETTE: tuple[tuple[int, int, int], ...] = (
    (128, 128, 128),
    (128, 0, 0),
    (192, 192, 128),
    (128, 64, 128),
    (60, 40, 222),
    (128, 128, 0),
    (192, 128, 128),
    (64, 64, 128),
    (64, 0, 128),
    (64, 64, 0),
    (0, 128, 192),
)
#: Raw label value of void/unlabelled pixels in the SegNet annotation PNGs.
CAMVID_VOID: int = 11

SPLITS = ("train", "val", "test")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")  # originals are PNG, a pack's images JPEG


def default_camvid_root() -> Path:
    """Where CamVid is looked for when no root is given: ``$GASGNN_CAMVID``.

    Returns:
        Path: ``$GASGNN_CAMVID``.

    Raises:
        DatasetError: when the variable is not set (the message says how to give the root).
    """
    env = os.environ.get("GASGNN_CAMVID")
    if env:
        return Path(env).expanduser()
    raise DatasetError("CamVid root not given: pass --root DIR (the folder holding train/, trainannot/, train.txt, "
                       "...) or set the environment variable GASGNN_CAMVID=DIR", Path("CamVid"))


def _resolve(root: Path, listed: str) -> Path:
    """Maps ``/SegNet/CamVid/train/x.png`` to ``root/train/x.png`` (last two components)."""
    parts = Path(listed.replace("\\", "/")).parts
    if len(parts) < 2:
        raise ValueError(listed)
    return root / parts[-2] / parts[-1]


def make_camvid_tree(
    root: str | os.PathLike,
    counts: Mapping[str, int] | None = None,
    size: tuple[int, int] = (36, 48),
    seed: int = 0,
) -> Path:
    """Writes a tiny CamVid tree in the SegNet layout (``train/``, ``trainannot/``, ``train.txt`` with
    ``/SegNet/CamVid/...`` paths, ...), CamVid's test fixture. Masks use labels 0..10 and the void label 11.

    Args:
        root (str or PathLike): Destination directory.
        counts (mapping, optional): Images per split. (default: ``{"train": 3, "val": 2, "test": 2}``)
        size ((int, int), optional): Image ``(height, width)``. (default: ``(36, 48)``)
        seed (int, optional): Random seed. (default: :obj:`0`)

    Returns:
        Path: ``root``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    counts = dict(counts or {"train": 3, "val": 2, "test": 2})
    values = np.arange(CAMVID_VOID + 1)
    for split, n in counts.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / f"{split}annot").mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(n):
            name = f"0001TP_{split}_{i:04d}.png"
            fake_image(rng, size).save(root / split / name)
            Image.fromarray(fake_labels(rng, size, values)).save(root / f"{split}annot" / name)
            lines.append(f"/SegNet/CamVid/{split}/{name} /SegNet/CamVid/{split}annot/{name}")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


@register_dataset("camvid", fixture=make_camvid_tree,
                  root_help="the SegNet CamVid folder (train/, trainannot/, train.txt, ...; default $GASGNN_CAMVID)")
class CamVid(PairedFileDataset):
    """The CamVid road-scene dataset in the SegNet layout.

    Expected layout (the list files hold ``image mask`` pairs of absolute SegNet paths such as
    ``/SegNet/CamVid/train/0001TP_006690.png``; only their last two components are used)::

        root/
          train/ val/ test/                 RGB PNG, 480x360 (JPEG in a pack, see below)
          trainannot/ valannot/ testannot/  8-bit PNG, class indices 0..10, 11 = void
          train.txt val.txt test.txt

    If a list file is missing, images (``.png``, ``.jpg`` or ``.jpeg``) and annotations (``.png``) are
    paired by file stem. Splits have 367 / 101 / 233 images. Raw label 11 (void) maps to ``ignore_index``.
    A compact pack written by :func:`~gasgnn.data.pack_camvid` (``gasgnn data pack``: JPEG images, the
    same PNG labels, list files naming the ``.jpg`` images) is read the same way.

    Args:
        root (str or PathLike, optional): Dataset root. (default: :func:`default_camvid_root`)
        split (str, optional): ``"train"``, ``"val"``, ``"test"`` or ``"trainval"``.
            (default: ``"train"``)
        transform (callable, optional): Joint transform. (default: :func:`eval_transform`)
        ignore_index (int, optional): Label of void pixels in returned masks. (default: :obj:`255`)
        on_error (str, optional): ``"raise"`` or ``"skip"``; see :class:`PairedFileDataset`.
            (default: ``"raise"``)

    Raises:
        DatasetError: if the root, a split directory or a listed file is missing (naming it).
    """

    name = "camvid"

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str | None = "train",
        transform: JointTransform | None = None,
        ignore_index: int = 255,
        on_error: OnError = "raise",
    ) -> None:
        self.root = Path(root).expanduser() if root is not None else default_camvid_root()
        self.split = split or "train"
        splits = ("train", "val") if self.split == "trainval" else (self.split,)
        if any(s not in SPLITS for s in splits):
            raise ValueError(f"unknown CamVid split {self.split!r}; expected one of {SPLITS + ('trainval',)}")
        require_dir(self.root, "CamVid root")
        samples: list[Sample] = []
        for s in splits:
            samples += self._list_split(s)
        super().__init__(
            samples,
            CAMVID_CLASSES,
            CAMVID_PALETTE,
            label_map=None,
            void_values=(CAMVID_VOID, 255),
            transform=transform,
            ignore_index=ignore_index,
            on_error=on_error,
        )

    def _list_split(self, split: str) -> list[Sample]:
        listing = self.root / f"{split}.txt"
        if listing.is_file():
            samples = []
            for lineno, line in enumerate(listing.read_text().splitlines(), 1):
                fields = line.split()
                if not fields:
                    continue
                try:
                    if len(fields) != 2:
                        raise ValueError(line)
                    samples.append(Sample(_resolve(self.root, fields[0]), _resolve(self.root, fields[1])))
                except ValueError:
                    raise DatasetError(
                        f"{listing}:{lineno}: expected 'image_path mask_path', got {line!r}", listing
                    ) from None
            return samples
        img_dir = require_dir(self.root / split, f"CamVid {split} images (and no {listing.name})")
        ann_dir = require_dir(self.root / f"{split}annot", f"CamVid {split} annotations")
        images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
        return [Sample(p, ann_dir / f"{p.stem}.png") for p in images]
