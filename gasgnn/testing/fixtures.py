"""Tiny dataset trees in the real on-disk layouts, for tests, examples and smoke runs.

Each writer fills a directory with a few small random images and label masks laid out exactly
as the corresponding dataset class expects, so code paths can be exercised without the real
data.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from gasgnn.data import CAMVID_VOID, write_classes_file
from gasgnn.data.cityscapes import CITYSCAPES_MAX_ID

__all__ = ["make_camvid_tree", "make_cityscapes_tree", "make_folder_tree"]


def _image(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8))


def _labels(rng: np.random.Generator, size: tuple[int, int], values: np.ndarray) -> np.ndarray:
    """Blocky random labels covering ``values`` (each value appears at least once)."""
    h, w = size
    coarse = rng.choice(values, size=(max(1, h // 4), max(1, w // 4)))
    mask = np.kron(coarse, np.ones((4, 4), dtype=coarse.dtype))[:h, :w]
    mask = np.pad(mask, ((0, h - mask.shape[0]), (0, w - mask.shape[1])), mode="edge")
    flat = mask.reshape(-1)
    flat[: len(values)] = values[: flat.size]
    return mask.astype(np.uint8)


def make_camvid_tree(
    root: str | os.PathLike,
    counts: Mapping[str, int] | None = None,
    size: tuple[int, int] = (36, 48),
    seed: int = 0,
) -> Path:
    """Writes a CamVid tree in the SegNet layout (``train/``, ``trainannot/``, ``train.txt`` with
    ``/SegNet/CamVid/...`` paths, ...). Masks use labels 0..10 and the void label 11.

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
            _image(rng, size).save(root / split / name)
            Image.fromarray(_labels(rng, size, values)).save(root / f"{split}annot" / name)
            lines.append(f"/SegNet/CamVid/{split}/{name} /SegNet/CamVid/{split}annot/{name}")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def make_cityscapes_tree(
    root: str | os.PathLike,
    cities: Mapping[str, Mapping[str, int]] | None = None,
    size: tuple[int, int] = (32, 64),
    seed: int = 0,
) -> Path:
    """Writes a Cityscapes tree (``leftImg8bit/{split}/{city}/..._leftImg8bit.png`` and
    ``gtFine/{split}/{city}/..._gtFine_labelIds.png``); label ids cover 0..33.

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
                _image(rng, size).save(img_dir / f"{stem}_leftImg8bit.png")
                Image.fromarray(_labels(rng, size, values)).save(ann_dir / f"{stem}_gtFine_labelIds.png")
    return root


def make_folder_tree(
    root: str | os.PathLike,
    n: int = 4,
    classes: Sequence[str] = ("background", "road", "car"),
    size: tuple[int, int] = (24, 32),
    palette: bool = True,
    void_value: int = 255,
    seed: int = 0,
) -> Path:
    """Writes a folder-dataset tree (``images/*.png``, ``masks/*.png``, ``classes.txt``).

    Args:
        root (str or PathLike): Destination directory.
        n (int, optional): Number of images. (default: :obj:`4`)
        classes (sequence of str, optional): Class names.
        size ((int, int), optional): Image ``(height, width)``. (default: ``(24, 32)``)
        palette (bool, optional): Write colours into ``classes.txt``. (default: :obj:`True`)
        void_value (int, optional): Void label used in some mask pixels. (default: :obj:`255`)
        seed (int, optional): Random seed. (default: :obj:`0`)

    Returns:
        Path: ``root``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    values = np.array([*range(len(classes)), void_value])
    for i in range(n):
        _image(rng, size).save(root / "images" / f"img_{i:03d}.png")
        Image.fromarray(_labels(rng, size, values)).save(root / "masks" / f"img_{i:03d}.png")
    colours = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in classes] if palette else None
    write_classes_file(root / "classes.txt", classes, colours)
    return root
