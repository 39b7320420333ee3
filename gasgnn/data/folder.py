"""A generic image-folder segmentation dataset (``images/``, ``masks/``, ``classes.txt``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .base import JointTransform, OnError, PairedFileDataset, Sample
from .io import IMAGE_EXTENSIONS, DatasetError, fake_image, fake_labels, require_dir
from .registry import register_dataset

__all__ = ["FolderDataset", "read_classes_file", "write_classes_file", "default_palette", "make_folder_tree"]


def default_palette(n: int) -> list[tuple[int, int, int]]:
    """A deterministic palette of ``n`` distinct colours (the PASCAL VOC bit pattern, skipping
    black so that it stays free for void).

    Args:
        n (int): Number of colours.

    Returns:
        list of (int, int, int): RGB triples.
    """
    out = []
    for i in range(1, n + 1):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return out


def read_classes_file(path: str | os.PathLike) -> tuple[list[str], list[tuple[int, int, int]] | None]:
    """Parses a class-names file.

    One class per line, in label order; blank lines and lines starting with ``#`` are skipped. A
    line may end with an RGB colour, e.g. ``traffic light 250 170 30``; either every class has a
    colour or none has.

    Args:
        path (str or PathLike): The file.

    Returns:
        (list of str, list of RGB triples or None): Names and palette (:obj:`None` if no colours).

    Raises:
        DatasetError: if the file is missing, empty or malformed (naming it and the line).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"missing class-names file: {path}", path)
    names: list[str] = []
    colours: list[tuple[int, int, int] | None] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        tokens = line.replace(",", " ").split()
        rgb = None
        if len(tokens) >= 4 and all(t.isdigit() for t in tokens[-3:]):
            rgb = tuple(int(t) for t in tokens[-3:])
            if not all(0 <= v <= 255 for v in rgb):
                raise DatasetError(f"{path}:{lineno}: colour values must be in 0..255: {line!r}", path)
            tokens = tokens[:-3]
        names.append(" ".join(tokens))
        colours.append(rgb)  # type: ignore[arg-type]
    if not names:
        raise DatasetError(f"class-names file {path} lists no classes", path)
    if len(set(names)) != len(names):
        raise DatasetError(f"class-names file {path} has duplicate names", path)
    if all(c is None for c in colours):
        return names, None
    if any(c is None for c in colours):
        raise DatasetError(f"class-names file {path}: give a colour for every class or for none", path)
    return names, colours  # type: ignore[return-value]


def write_classes_file(
    path: str | os.PathLike, classes: Sequence[str], palette: Sequence[Sequence[int]] | None = None
) -> Path:
    """Writes a class-names file readable by :func:`read_classes_file`.

    Args:
        path (str or PathLike): Destination.
        classes (sequence of str): Names in label order.
        palette (sequence of RGB triples, optional): Colours to append to each line.

    Returns:
        Path: ``path``.
    """
    path = Path(path)
    lines = []
    for i, name in enumerate(classes):
        lines.append(name if palette is None else f"{name} {' '.join(str(int(v)) for v in palette[i])}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_folder_tree(
    root: str | os.PathLike,
    n: int = 4,
    classes: Sequence[str] = ("background", "road", "car"),
    size: tuple[int, int] = (24, 32),
    palette: bool = True,
    void_value: int = 255,
    seed: int = 0,
) -> Path:
    """Writes a tiny folder-dataset tree (``images/*.png``, ``masks/*.png``, ``classes.txt``), the folder
    dataset's test fixture.

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
        fake_image(rng, size).save(root / "images" / f"img_{i:03d}.png")
        Image.fromarray(fake_labels(rng, size, values)).save(root / "masks" / f"img_{i:03d}.png")
    colours = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in classes] if palette else None
    write_classes_file(root / "classes.txt", classes, colours)
    return root


@register_dataset("folder", fixture=make_folder_tree, root_help="a folder with images/, masks/ and classes.txt")
class FolderDataset(PairedFileDataset):
    """A dataset of images and index masks in plain folders.

    Layout::

        root/
          classes.txt          one class name per line (optionally "name R G B")
          images/<stem>.png    (or .jpg, .jpeg, .bmp, .tif, .webp, ...)
          masks/<stem>.png     8-bit (or 16-bit) PNG, class indices, void = ``void_value``

    Splits: with ``split="val"``, ``root/val/`` is used as the root if it exists (``classes.txt``
    may sit in it or in ``root``); otherwise ``root/val.txt`` must list the stems of the split,
    one per line. With ``split=None`` all of ``root/images`` is used.

    Args:
        root (str or PathLike): Dataset root.
        split (str, optional): Split name (see above). (default: :obj:`None`)
        transform (callable, optional): Joint transform. (default: :func:`eval_transform`)
        ignore_index (int, optional): Label of void pixels in returned masks. (default: :obj:`255`)
        void_value (int, optional): Raw mask value meaning void. (default: :obj:`255`)
        classes (sequence of str, optional): Class names, overriding ``classes.txt``.
        palette (sequence of RGB triples, optional): Colours, overriding ``classes.txt``; if
            neither gives one, :func:`default_palette` is used.
        on_error (str, optional): ``"raise"`` or ``"skip"``; see :class:`PairedFileDataset`.
            (default: ``"raise"``)

    Raises:
        DatasetError: if a directory, the class file, or an image's mask is missing (naming it).
    """

    name = "folder"

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str | None = None,
        transform: JointTransform | None = None,
        ignore_index: int = 255,
        void_value: int = 255,
        classes: Sequence[str] | None = None,
        palette: Sequence[Sequence[int]] | None = None,
        on_error: OnError = "raise",
    ) -> None:
        if root is None:
            raise DatasetError("FolderDataset needs a root directory (got root=None)")
        self.root = Path(root).expanduser()
        self.split = split
        require_dir(self.root, "folder dataset root")
        base, stems = self.root, None
        if split is not None:
            if (self.root / split).is_dir():
                base = self.root / split
            elif (self.root / f"{split}.txt").is_file():
                lines = (self.root / f"{split}.txt").read_text(encoding="utf-8").splitlines()
                stems = [Path(s.strip()).stem for s in lines if s.strip()]
            else:
                raise DatasetError(
                    f"split {split!r} not found: expected directory {self.root / split} "
                    f"or list file {self.root / f'{split}.txt'}",
                    self.root / split,
                )
        img_dir = require_dir(base / "images", "folder dataset images")
        mask_dir = require_dir(base / "masks", "folder dataset masks")
        if classes is None:
            cfile = base / "classes.txt"
            if not cfile.is_file() and base != self.root:
                cfile = self.root / "classes.txt"
            classes, file_palette = read_classes_file(cfile)
            if palette is None:
                palette = file_palette
        if palette is None:
            palette = default_palette(len(classes))
        by_stem: dict[str, Path] = {}
        for p in sorted(img_dir.iterdir()):
            if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file():
                if p.stem in by_stem:
                    raise DatasetError(f"two images share the stem {p.stem!r}: {by_stem[p.stem]} and {p}", p)
                by_stem[p.stem] = p
        if stems is None:
            stems = list(by_stem)
        else:
            missing = [s for s in stems if s not in by_stem]
            if missing and on_error == "raise":
                raise DatasetError(
                    f"{self.root / f'{split}.txt'} lists {missing[0]!r} but there is no image "
                    f"{img_dir / missing[0]}.*",
                    img_dir / missing[0],
                )
        samples = [Sample(by_stem.get(s, img_dir / f"{s}.png"), mask_dir / f"{s}.png") for s in stems]
        if not samples:
            raise DatasetError(f"no images found in {img_dir}", img_dir)
        super().__init__(
            samples,
            classes,
            palette,
            label_map=None,
            void_values=(void_value,),
            transform=transform,
            ignore_index=ignore_index,
            on_error=on_error,
        )
