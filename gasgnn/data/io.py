"""File-level helpers of the datasets: the error type, image and mask readers, colourising, and random
images and label masks for the datasets' test fixtures."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch import Tensor

__all__ = ["DatasetError", "IMAGE_EXTENSIONS", "require_dir", "read_image", "read_mask", "colorize", "fake_image",
           "fake_labels"]

#: File extensions accepted as images (lower case, with the dot).
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


class DatasetError(ValueError):
    """A dataset sample or layout is bad: missing file or directory, unreadable or corrupt image,
    image/mask size mismatch, or label values outside the class set.

    The message always names the offending path; it is also kept in :attr:`path`.

    Args:
        message (str): Human-readable description (should contain the path).
        path (str or PathLike, optional): The offending file or directory.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None) -> None:
        super().__init__(message)
        self.path: Path | None = Path(path) if path is not None else None


def require_dir(path: Path, what: str) -> Path:
    """Checks that ``path`` is a directory.

    Args:
        path (Path): Directory that must exist.
        what (str): What it is, for the message (e.g. ``"CamVid root"``).

    Returns:
        Path: ``path``.

    Raises:
        DatasetError: naming the missing directory.
    """
    if not path.is_dir():
        hint = " (it is a file)" if path.exists() else ""
        raise DatasetError(f"{what} not found: directory {path} does not exist{hint}", path)
    return path


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Reads an image file as RGB.

    Args:
        path (str or PathLike): Image file (any format PIL reads; grey, palette and RGBA images
            are converted to RGB).

    Returns:
        numpy.ndarray: ``uint8`` array of shape ``[H, W, 3]``.

    Raises:
        DatasetError: if the file is missing, unreadable, truncated or corrupt.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode != "RGB":
                im = im.convert("RGB")
            return np.asarray(im, dtype=np.uint8).copy()
    except FileNotFoundError:
        raise DatasetError(f"missing image file: {path}", path) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DatasetError(f"cannot read image {path}: corrupt or unsupported file ({e})", path) from None


_MASK_MODES = ("L", "P", "I", "I;16", "I;16L", "I;16B", "1")


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Reads a single-channel label mask (class indices, not colours).

    Args:
        path (str or PathLike): Mask file, 8- or 16-bit grey or palette PNG.

    Returns:
        numpy.ndarray: Integer array of shape ``[H, W]`` (``uint8`` for 8-bit masks).

    Raises:
        DatasetError: if the file is missing, unreadable/corrupt, or not single-channel.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in _MASK_MODES:
                raise DatasetError(
                    f"mask {path} must be a single-channel index image (mode L, P or I), "
                    f"got mode {im.mode}; colour-coded masks are not supported",
                    path,
                )
            arr = np.asarray(im)
    except FileNotFoundError:
        raise DatasetError(f"missing mask file: {path}", path) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        if isinstance(e, DatasetError):
            raise
        raise DatasetError(f"cannot read mask {path}: corrupt or unsupported file ({e})", path) from None
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    return arr.copy()


def colorize(
    mask: Tensor | np.ndarray,
    palette: Sequence[Sequence[int]],
    ignore_color: Sequence[int] = (0, 0, 0),
) -> np.ndarray:
    """Maps a label mask to RGB colours for visualisation.

    Args:
        mask (Tensor or numpy.ndarray): Integer class indices of any shape (e.g. ``[H, W]`` or
            ``[N, H, W]``). Values outside ``0 .. len(palette) - 1`` (ignore/void) get
            ``ignore_color``.
        palette (sequence of RGB triples): Colour per class.
        ignore_color (RGB triple, optional): Colour of out-of-range values. (default: black)

    Returns:
        numpy.ndarray: ``uint8`` array of shape ``[*mask.shape, 3]``.
    """
    if isinstance(mask, Tensor):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if not np.issubdtype(mask.dtype, np.integer):
        raise TypeError(f"colorize expects an integer mask, got dtype {mask.dtype}")
    table = np.asarray(list(palette) + [tuple(ignore_color)], dtype=np.uint8).reshape(-1, 3)
    idx = mask.astype(np.int64)
    idx = np.where((idx < 0) | (idx >= len(palette)), len(palette), idx)
    return table[idx]


def fake_image(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A random RGB image of ``size = (H, W)`` (for test fixtures)."""
    return Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8))


def fake_labels(rng: np.random.Generator, size: tuple[int, int], values: Sequence[int] | np.ndarray) -> np.ndarray:
    """Blocky random labels ``[H, W]`` (``uint8``) drawn from ``values``, each value at least once (for test
    fixtures: every class and the void label appear)."""
    values = np.asarray(values)
    h, w = size
    coarse = rng.choice(values, size=(max(1, h // 4), max(1, w // 4)))
    mask = np.kron(coarse, np.ones((4, 4), dtype=coarse.dtype))[:h, :w]
    mask = np.pad(mask, ((0, h - mask.shape[0]), (0, w - mask.shape[1])), mode="edge")
    flat = mask.reshape(-1)
    flat[: len(values)] = values[: flat.size]
    return mask.astype(np.uint8)
