"""The built-in procedurally generated street-scene dataset."""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .base import JointTransform, SegmentationDataset
from .folder import write_classes_file
from .io import DatasetError
from .registry import register_dataset
from .synthgen import SYNTH_CLASSES, SYNTH_PALETTE, render_street

__all__ = ["SyntheticStreets"]

#: Default number of images per split.
DEFAULT_SIZES = {"train": 256, "val": 64, "test": 64}


def _split_key(split: str) -> int:
    """A stable integer per split name (independent of ``PYTHONHASHSEED``)."""
    return zlib.crc32(split.encode("utf-8"))


@register_dataset("synthetic")
class SyntheticStreets(SegmentationDataset):
    """Procedurally generated street scenes with 9 classes (sky, building, road, sidewalk,
    vegetation, pole, lane marking, car, pedestrian), rendered on the fly.

    Sample ``i`` is a pure function of ``(seed, split, i, size)``: the same arguments give
    byte-identical images and masks regardless of worker count or access order, and different
    seeds or splits give different scenes. No pixel is void. See ``docs/data.md`` for the
    generator and the class histogram.

    Args:
        root (str or PathLike, optional): Ignored (accepted for :func:`build_dataset`).
        split (str, optional): Split name; it changes the scenes. (default: ``"train"``)
        transform (callable, optional): Joint transform. (default: :func:`eval_transform`)
        num_images (int, optional): Dataset length. (default: 256 for ``"train"``, 64 otherwise)
        size ((int, int), optional): Image ``(height, width)``. (default: ``(128, 160)``)
        seed (int, optional): Base seed. (default: :obj:`0`)
        ignore_index (int, optional): Ignore label (never present in the masks, but used by
            transforms that pad). (default: :obj:`255`)
        cache (bool, optional): Keep rendered samples in memory (per process). (default: :obj:`False`)

    Example:
        >>> ds = SyntheticStreets(num_images=8, size=(64, 96), seed=1)
        >>> image, mask = ds[0]
        >>> image.shape, mask.shape
        (torch.Size([3, 64, 96]), torch.Size([64, 96]))
    """

    name = "synthetic"

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str | None = "train",
        transform: JointTransform | None = None,
        num_images: int | None = None,
        size: int | Sequence[int] = (128, 160),
        seed: int = 0,
        ignore_index: int = 255,
        cache: bool = False,
    ) -> None:
        super().__init__(SYNTH_CLASSES, SYNTH_PALETTE, transform=transform, ignore_index=ignore_index)
        self.root = Path(root) if root is not None else None
        self.split = split or "train"
        self.num_images = int(num_images if num_images is not None else DEFAULT_SIZES.get(self.split, 64))
        if self.num_images < 0:
            raise ValueError(f"num_images must be >= 0, got {num_images}")
        if isinstance(size, int):
            size = (size, size)
        self.size: tuple[int, int] = (int(size[0]), int(size[1]))
        if min(self.size) < 16:
            raise ValueError(f"size must be at least 16x16, got {self.size}")
        self.seed = int(seed)
        self.cache = cache
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return self.num_images

    def rng(self, index: int) -> np.random.Generator:
        """The random generator of sample ``index`` (seeded from ``(seed, split, index)``)."""
        s = self.seed % (1 << 64)
        return np.random.default_rng([s & 0xFFFFFFFF, s >> 32, _split_key(self.split), int(index)])

    def generate(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Renders sample ``index``.

        Args:
            index (int): Sample index (need not be below ``len(self)``).

        Returns:
            (numpy.ndarray, numpy.ndarray): ``uint8`` image ``[H, W, 3]`` and ``uint8`` mask
            ``[H, W]``.
        """
        if index < 0:
            raise IndexError(f"negative sample index {index}")
        return render_street(self.rng(index), *self.size)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Renders (or fetches from the cache) sample ``index`` untransformed.

        Returns:
            (numpy.ndarray, numpy.ndarray): ``uint8`` image ``[H, W, 3]`` and ``int64`` mask
            ``[H, W]``.
        """
        if index in self._cache:
            image, mask = self._cache[index]
        else:
            image, mask = self.generate(index)
            if self.cache:
                self._cache[index] = (image, mask)
        return image, mask.astype(np.int64)

    def image_size(self, index: int) -> tuple[int, int]:
        """``(height, width)`` of every sample (``size``)."""
        return self.size

    def write(self, root: str | os.PathLike, overwrite: bool = False, progress: bool = False) -> Path:
        """Exports the dataset to the folder-dataset layout (``images/``, ``masks/``,
        ``classes.txt`` with the palette), readable with :class:`~gasgnn.data.FolderDataset`.

        Args:
            root (str or PathLike): Destination (write each split to its own folder, e.g.
                ``out/train`` and ``out/val``, and load with ``FolderDataset(out, "train")``).
            overwrite (bool, optional): Allow writing into a non-empty ``images/`` folder.
                (default: :obj:`False`)
            progress (bool, optional): Show a progress bar. (default: :obj:`False`)

        Returns:
            Path: ``root``.

        Raises:
            DatasetError: if ``root/images`` already holds files and ``overwrite`` is false.
        """
        root = Path(root)
        img_dir, mask_dir = root / "images", root / "masks"
        if img_dir.is_dir() and any(img_dir.iterdir()) and not overwrite:
            raise DatasetError(f"{img_dir} is not empty (pass overwrite=True)", img_dir)
        img_dir.mkdir(parents=True, exist_ok=True)
        mask_dir.mkdir(parents=True, exist_ok=True)
        write_classes_file(root / "classes.txt", self.classes, self.palette)
        indices = range(len(self))
        if progress:
            from tqdm import tqdm

            indices = tqdm(indices, desc=f"writing {root}", unit="img")
        width = max(5, len(str(len(self) - 1)))
        for i in indices:
            image, mask = self.generate(i)
            stem = f"{i:0{width}d}"
            Image.fromarray(image).save(img_dir / f"{stem}.png")
            Image.fromarray(mask).save(mask_dir / f"{stem}.png")
        return root

    def extra_repr(self) -> str:
        return f"split={self.split!r}, size={self.size}, seed={self.seed}"
