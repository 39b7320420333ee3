"""Joint (image + mask) transforms for semantic segmentation.

Every transform is a callable ``(image, mask) -> (image, mask)``. Inputs may be the raw
``uint8 [H, W, 3]`` numpy image / integer ``[H, W]`` mask that datasets load, PIL images, or
tensors; every transform returns an image tensor ``[3, H, W]`` and an ``int64`` mask tensor
``[H, W]``. Geometric transforms (:class:`Resize`, :class:`RandomScale`, :class:`RandomCrop`,
:class:`RandomHorizontalFlip`) keep the image dtype: a ``uint8`` image stays ``uint8``, which
makes resampling about 4x faster, so put them first; :class:`ToTensor` and :class:`Normalize`
produce ``float32``. Images are resampled bilinearly and masks with nearest neighbour, so masks
never get new label values.

Randomness: random transforms take an optional :class:`torch.Generator`. With the default
(:obj:`None`) they draw from the global torch RNG, which :class:`torch.utils.data.DataLoader`
seeds differently in every worker from the loader's generator; use
:func:`gasgnn.data.make_loader` for reproducible augmentation. An explicit generator is copied
into each worker process, so every worker would repeat the same draws: only pass one for
single-process use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Compose",
    "ToTensor",
    "Normalize",
    "Resize",
    "RandomScale",
    "RandomCrop",
    "RandomHorizontalFlip",
    "train_transform",
    "eval_transform",
    "to_tensors",
    "denormalize",
]

#: ImageNet channel means (RGB, images in ``[0, 1]``).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
#: ImageNet channel standard deviations (RGB).
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

Size2 = tuple[int, int]


def _pair(size: int | Sequence[int], what: str) -> Size2:
    if isinstance(size, int):
        size = (size, size)
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f"{what} must be a positive int or (height, width), got {size}")
    return size  # type: ignore[return-value]


def _as_tensors(image: Any, mask: Any) -> tuple[Tensor, Tensor]:
    """Converts to an image tensor ``[3, H, W]`` keeping its dtype (``uint8`` stays ``uint8``,
    which makes resampling several times faster) and an ``int64`` mask ``[H, W]``."""
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim != 3:
            raise ValueError(f"expected an image [H, W, 3], got shape {image.shape}")
        image = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        if image.dtype != torch.uint8:
            image = image.float()
    elif not isinstance(image, Tensor):
        raise TypeError(f"unsupported image type {type(image).__name__}")
    elif image.dtype != torch.uint8 and not image.is_floating_point():
        image = image.float()
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask)
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.int64))
    elif isinstance(mask, Tensor):
        mask = mask.long()
    else:
        raise TypeError(f"unsupported mask type {type(mask).__name__}")
    if image.dim() != 3 or mask.dim() != 2 or image.shape[1:] != mask.shape:
        raise ValueError(f"image {tuple(image.shape)} and mask {tuple(mask.shape)} do not match")
    return image, mask


def to_tensors(image: Any, mask: Any) -> tuple[Tensor, Tensor]:
    """Converts an image and a mask to tensors.

    Args:
        image: ``uint8`` numpy array ``[H, W, 3]`` or ``[H, W]``, PIL image, or tensor
            ``[3, H, W]`` (``uint8`` is scaled to ``[0, 1]``; floating tensors pass unchanged).
        mask: Integer numpy array, PIL image or tensor ``[H, W]``.

    Returns:
        (Tensor, Tensor): ``float32`` image ``[3, H, W]`` and ``int64`` mask ``[H, W]``.
    """
    image, mask = _as_tensors(image, mask)
    if image.dtype == torch.uint8:
        image = image.float().div_(255.0)
    return image, mask


def _uniform(lo: float, hi: float, generator: torch.Generator | None) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=generator))


def _randint(high: int, generator: torch.Generator | None) -> int:
    """Uniform integer in ``0 .. high - 1``."""
    return int(torch.randint(high, (), generator=generator))


def _resize_pair(image: Tensor, mask: Tensor, size: Size2, antialias: bool) -> tuple[Tensor, Tensor]:
    if tuple(mask.shape) == size:
        return image, mask
    image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=antialias)[
        0
    ]
    m = F.interpolate(mask[None, None].float(), size=size, mode="nearest-exact")[0, 0]
    return image, m.long()


class Compose:
    """Applies joint transforms in sequence.

    Args:
        transforms (sequence of callables): Each ``(image, mask) -> (image, mask)``.
    """

    def __init__(self, transforms: Sequence[Callable[[Any, Any], tuple[Any, Any]]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, image: Any, mask: Any) -> tuple[Any, Any]:
        for t in self.transforms:
            image, mask = t(image, mask)
        return image, mask

    def __repr__(self) -> str:
        inner = "".join(f"\n  {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])"


class ToTensor:
    """Converts to a ``float32`` image ``[3, H, W]`` in ``[0, 1]`` and an ``int64`` mask
    ``[H, W]``; see :func:`to_tensors`."""

    def __call__(self, image: Any, mask: Any) -> tuple[Tensor, Tensor]:
        return to_tensors(image, mask)

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize:
    """Normalises the image channels: ``(image - mean) / std``; the mask is unchanged.

    Args:
        mean (sequence of float, optional): Channel means. (default: ImageNet)
        std (sequence of float, optional): Channel standard deviations. (default: ImageNet)
    """

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError("mean and std need 3 values and std must be positive")
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self._m = torch.tensor(self.mean).view(3, 1, 1)
        self._s = torch.tensor(self.std).view(3, 1, 1)

    def __call__(self, image: Any, mask: Any) -> tuple[Tensor, Tensor]:
        image, mask = to_tensors(image, mask)
        m, sd = self._m.to(image.device), self._s.to(image.device)  # a sample cached on a GPU stays there
        return (image - m) / sd, mask

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class Resize:
    """Resizes image (bilinear) and mask (nearest neighbour) to a fixed size.

    Args:
        size (int or (int, int)): ``(height, width)``, or an int to match the shorter side and
            keep the aspect ratio.
        antialias (bool, optional): Antialias the image when downscaling. (default: :obj:`True`)
    """

    def __init__(self, size: int | Sequence[int], antialias: bool = True) -> None:
        if isinstance(size, int):
            if size <= 0:
                raise ValueError(f"size must be positive, got {size}")
            self.size: int | Size2 = size
        else:
            self.size = _pair(size, "size")
        self.antialias = antialias

    def __call__(self, image: Any, mask: Any) -> tuple[Tensor, Tensor]:
        image, mask = _as_tensors(image, mask)
        if isinstance(self.size, int):
            h, w = mask.shape
            s = self.size / min(h, w)
            size = (max(1, round(h * s)), max(1, round(w * s)))
        else:
            size = self.size
        return _resize_pair(image, mask, size, self.antialias)

    def __repr__(self) -> str:
        return f"Resize(size={self.size})"


class RandomScale:
    """Rescales image and mask by a factor drawn uniformly from ``scale_range``.

    Args:
        scale_range ((float, float), optional): ``(min, max)`` scale factor. (default: ``(0.5, 2.0)``)
        antialias (bool, optional): Antialias the image when downscaling. (default: :obj:`False`)
        generator (torch.Generator, optional): RNG; the global torch RNG if :obj:`None`.
    """

    def __init__(
        self,
        scale_range: Sequence[float] = (0.5, 2.0),
        antialias: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        lo, hi = (float(v) for v in scale_range)
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range must satisfy 0 < min <= max, got {scale_range}")
        self.scale_range = (lo, hi)
        self.antialias = antialias
        self.generator = generator

    def __call__(self, image: Any, mask: Any) -> tuple[Tensor, Tensor]:
        image, mask = _as_tensors(image, mask)
        s = _uniform(*self.scale_range, self.generator)
        h, w = mask.shape
        return _resize_pair(image, mask, (max(1, round(h * s)), max(1, round(w * s))), self.antialias)

    def __repr__(self) -> str:
        return f"RandomScale(scale_range={self.scale_range})"


class RandomCrop:
    """Crops a random ``size`` window, padding first (bottom/right) if the input is smaller.

    Padded mask pixels get ``ignore_index`` so they do not count in the loss; padded image pixels
    get zeros or the dataset mean.

    Args:
        size (int or (int, int)): Crop ``(height, width)``.
        ignore_index (int, optional): Mask value of padded pixels. (default: :obj:`255`)
        image_pad (str or float, optional): ``"mean"`` pads the image with ``mean`` (which becomes
            0 after :class:`Normalize`, so apply this before normalising), ``"zero"`` with 0, or a
            value in ``[0, 1]`` image units (scaled by 255 for ``uint8`` images).
            (default: ``"mean"``)
        mean (sequence of float, optional): Channel means for ``image_pad="mean"``.
            (default: ImageNet)
        generator (torch.Generator, optional): RNG; the global torch RNG if :obj:`None`.
    """

    def __init__(
        self,
        size: int | Sequence[int],
        ignore_index: int = 255,
        image_pad: str | float = "mean",
        mean: Sequence[float] = IMAGENET_MEAN,
        generator: torch.Generator | None = None,
    ) -> None:
        self.size = _pair(size, "crop size")
        self.ignore_index = int(ignore_index)
        if image_pad == "mean":
            fill = [float(m) for m in mean]
        elif image_pad == "zero":
            fill = [0.0, 0.0, 0.0]
        elif isinstance(image_pad, (int, float)):
            fill = [float(image_pad)] * 3
        else:
            raise ValueError(f"image_pad must be 'mean', 'zero' or a number, got {image_pad!r}")
        self.image_pad = image_pad
        self._fill = torch.tensor(fill).view(3, 1, 1)
        self.generator = generator

    def __call__(self, image: Any, mask: Any) -> tuple[Tensor, Tensor]:
        image, mask = _as_tensors(image, mask)
        ch, cw = self.size
        h, w = mask.shape
        if h < ch or w < cw:
            ph, pw = max(h, ch), max(w, cw)
            fill = self._fill if image.is_floating_point() else (self._fill * 255).round().clamp(0, 255)
            padded = fill.to(image.device, image.dtype).expand(image.shape[0], ph, pw).clone()
            padded[:, :h, :w] = image
            pmask = mask.new_full((ph, pw), self.ignore_index)
            pmask[:h, :w] = mask
            image, mask, h, w = padded, pmask, ph, pw
        y0 = _randint(h - ch + 1, self.generator)
        x0 = _randint(w - cw + 1, self.generator)
        return image[:, y0 : y0 + ch, x0 : x0 + cw], mask[y0 : y0 + ch, x0 : x0 + cw]

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, ignore_index={self.ignore_index}, image_pad={self.image_pad!r})"


class RandomHorizontalFlip:
    """Mirrors image and mask together left-right with probability ``p``.

    Args:
        p (float, optional): Flip probability. (default: :obj:`0.5`)
        generator (torch.Generator, optional): RNG; the global torch RNG if :obj:`None`.
    """

    def __init__(self, p: float = 0.5, generator: torch.Generator | None = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = float(p)
        self.generator = generator

    def __call__(self, image: Any, mask: Any) -> tuple[Tensor, Tensor]:
        image, mask = _as_tensors(image, mask)
        if float(torch.rand((), generator=self.generator)) < self.p:
            return image.flip(-1), mask.flip(-1)
        return image, mask

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


def train_transform(
    crop_size: int | Sequence[int],
    scale_range: Sequence[float] = (0.5, 2.0),
    ignore_index: int = 255,
    flip: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    generator: torch.Generator | None = None,
) -> Compose:
    """The standard training augmentation: random scale, random crop (padded with the mean image
    value and ``ignore_index``), random horizontal flip, normalisation.

    Args:
        crop_size (int or (int, int)): Output ``(height, width)``.
        scale_range ((float, float), optional): Random scale range. (default: ``(0.5, 2.0)``)
        ignore_index (int, optional): Mask value of padding; use the dataset's. (default: :obj:`255`)
        flip (bool, optional): Add the random horizontal flip. (default: :obj:`True`)
        mean (sequence of float, optional): Normalisation mean. (default: ImageNet)
        std (sequence of float, optional): Normalisation std. (default: ImageNet)
        generator (torch.Generator, optional): RNG shared by the random transforms (single
            process use only; see the module notes). (default: :obj:`None`)

    Returns:
        Compose: The transform; outputs ``[3, *crop_size]`` float and ``[*crop_size]`` int64.
    """
    ts: list[Callable[[Any, Any], tuple[Any, Any]]] = [
        RandomScale(scale_range, generator=generator),
        RandomCrop(crop_size, ignore_index=ignore_index, image_pad="mean", mean=mean, generator=generator),
    ]
    if flip:
        ts.append(RandomHorizontalFlip(0.5, generator=generator))
    ts += [ToTensor(), Normalize(mean, std)]
    return Compose(ts)


def eval_transform(
    size: int | Sequence[int] | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Compose:
    """The deterministic evaluation transform: optional resize, tensor conversion, normalisation.

    Args:
        size (int or (int, int), optional): Resize target (see :class:`Resize`); :obj:`None` keeps
            the native resolution (the usual way to report mIoU). (default: :obj:`None`)
        mean (sequence of float, optional): Normalisation mean. (default: ImageNet)
        std (sequence of float, optional): Normalisation std. (default: ImageNet)

    Returns:
        Compose: The transform.
    """
    ts: list[Callable[[Any, Any], tuple[Any, Any]]] = []
    if size is not None:
        ts.append(Resize(size))
    ts += [ToTensor(), Normalize(mean, std)]
    return Compose(ts)


def denormalize(
    image: Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> np.ndarray:
    """Undoes :class:`Normalize` for display.

    Args:
        image (Tensor): Normalised image ``[3, H, W]`` (or a batch ``[N, 3, H, W]``).
        mean (sequence of float, optional): The mean used. (default: ImageNet)
        std (sequence of float, optional): The std used. (default: ImageNet)

    Returns:
        numpy.ndarray: ``uint8`` image ``[H, W, 3]`` (or ``[N, H, W, 3]``).
    """
    m = torch.tensor(mean, dtype=image.dtype).view(3, 1, 1)
    s = torch.tensor(std, dtype=image.dtype).view(3, 1, 1)
    x = (image.detach().cpu() * s + m).clamp_(0, 1).mul_(255).round_().to(torch.uint8)
    return x.movedim(-3, -1).numpy()
