"""Common machinery of the segmentation datasets: the base classes, label mapping and the
validation of bad samples (file I/O and the error type live in :mod:`gasgnn.data.io`).

Every dataset in :mod:`gasgnn.data` derives from :class:`SegmentationDataset` and returns
``(image, mask)`` pairs: ``image`` a float tensor ``[3, H, W]`` (normalised by the default
transform), ``mask`` an ``int64`` tensor ``[H, W]`` holding class indices in
``0 .. num_classes - 1`` or :attr:`~SegmentationDataset.ignore_index` for void pixels.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from .io import DatasetError, colorize, read_image, read_mask

__all__ = ["JointTransform", "OnError", "PairedFileDataset", "Sample", "SegmentationDataset"]

OnError = Literal["raise", "skip"]
JointTransform = Callable[[Any, Any], tuple[Any, Any]]


class Sample(NamedTuple):
    """One file-backed sample: the paths of an image and of its label mask."""

    image: Path
    mask: Path


class SegmentationDataset(Dataset):
    """Base class of the semantic segmentation datasets.

    Subclasses implement :meth:`__len__` and :meth:`load`; :meth:`__getitem__` applies the joint
    transform. Each dataset has ``classes`` (names), ``palette`` (RGB per class),
    ``num_classes`` and ``ignore_index``.

    Args:
        classes (sequence of str): Class names; index ``i`` is class ``i``.
        palette (sequence of RGB triples): Colour per class (same length as ``classes``).
        transform (callable, optional): Joint transform ``(image, mask) -> (image, mask)`` taking
            the ``uint8 [H, W, 3]`` image and ``int64 [H, W]`` mask from :meth:`load`. If
            :obj:`None`, :func:`gasgnn.data.eval_transform` is used (tensor conversion and
            ImageNet normalisation). (default: :obj:`None`)
        ignore_index (int, optional): Label value of void/unlabelled pixels in returned masks; must
            not be a valid class index. (default: :obj:`255`)
    """

    #: Registry name of the dataset (set by subclasses).
    name: str = "base"

    def __init__(
        self,
        classes: Sequence[str],
        palette: Sequence[Sequence[int]],
        transform: JointTransform | None = None,
        ignore_index: int = 255,
    ) -> None:
        super().__init__()
        classes = tuple(str(c) for c in classes)
        palette = tuple(tuple(int(v) for v in c) for c in palette)
        if len(classes) == 0:
            raise ValueError("a dataset needs at least one class")
        if len(palette) != len(classes):
            raise ValueError(f"palette has {len(palette)} colours for {len(classes)} classes")
        if any(len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in palette):
            raise ValueError("palette entries must be RGB triples with values in 0..255")
        if 0 <= int(ignore_index) < len(classes):
            raise ValueError(
                f"ignore_index={ignore_index} collides with a class index (0..{len(classes) - 1})"
            )
        self.classes: tuple[str, ...] = classes
        self.palette: tuple[tuple[int, int, int], ...] = palette  # type: ignore[assignment]
        self.ignore_index: int = int(ignore_index)
        if transform is None:
            from .transforms import eval_transform

            transform = eval_transform()
        self.transform: JointTransform = transform
        #: Samples dropped by ``on_error='skip'``: ``(path, reason)`` pairs.
        self.skipped: list[tuple[Path, str]] = []
        #: The device decoded samples are kept on (:meth:`keep_decoded`), :obj:`None` when every access decodes.
        self.keep_device: torch.device | None = None
        self._kept: dict[int, tuple[Tensor, Tensor]] = {}

    @property
    def num_classes(self) -> int:
        """Number of classes (excluding the ignore/void label)."""
        return len(self.classes)

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Loads one untransformed sample.

        Args:
            index (int): Sample index.

        Returns:
            (numpy.ndarray, numpy.ndarray): ``uint8`` image ``[H, W, 3]`` and ``int64`` mask
            ``[H, W]`` with classes ``0 .. num_classes - 1`` and ``ignore_index``.
        """
        raise NotImplementedError  # pragma: no cover - abstract

    def image_size(self, index: int) -> tuple[int, int]:
        """Native ``(height, width)`` of sample ``index`` before the transform.

        Args:
            index (int): Sample index.

        Returns:
            (int, int): Height and width.
        """
        return tuple(self.load(index)[1].shape[:2])  # type: ignore[return-value]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        """Returns the transformed sample ``index``.

        Shapes:
            - image: ``[3, H, W]`` float
            - mask: ``[H, W]`` int64
        """
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {type(self).__name__} of length {n}")
        i = int(index) % n
        if self.keep_device is None:
            return self.transform(*self.load(i))
        if i not in self._kept:
            image, mask = self.load(i)
            # uint8 image [3, H, W] and the smallest mask dtype: the transforms resample uint8 fastest
            small = mask.size == 0 or (mask.min() >= 0 and mask.max() < 256)
            mask_t = torch.from_numpy(mask.astype(np.uint8) if small else mask)
            self._kept[i] = (torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous()
                             .to(self.keep_device), mask_t.to(self.keep_device))
        image, mask = self._kept[i]
        return self.transform(image, mask)

    def keep_decoded(self, device: str | torch.device = "cpu") -> SegmentationDataset:
        """Keeps every sample decoded on ``device`` after its first access (JPEG/PNG decoding once per run,
        not once per epoch); on a GPU the transforms then run there too (use a loader without worker
        processes and without pinned memory: :func:`gasgnn.data.make_loader` sees to it).

        Args:
            device (str or torch.device, optional): ``"cpu"`` or a CUDA device. (default: ``"cpu"``)

        Returns:
            SegmentationDataset: ``self``.
        """
        self.keep_device = torch.device(device)
        self._kept = {}
        return self

    def colorize(self, mask: Tensor | np.ndarray) -> np.ndarray:
        """Colours a mask with this dataset's palette; see :func:`colorize`."""
        return colorize(mask, self.palette)

    def extra_repr(self) -> str:
        """Extra text for :meth:`__repr__` (subclasses add root/split)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra = f", {extra}" if extra else ""
        return f"{type(self).__name__}({len(self)} samples, {self.num_classes} classes{extra})"


class PairedFileDataset(SegmentationDataset):
    """A dataset of (image file, mask file) pairs whose raw mask values are mapped to train ids
    through a lookup table.

    Raw values listed in ``label_map`` become the mapped class, raw values in ``void_values``
    become ``ignore_index``; any other raw value is an error (``label outside the class set``).

    Args:
        samples (sequence of Sample): The ``(image, mask)`` path pairs.
        classes (sequence of str): Class names.
        palette (sequence of RGB triples): Colour per class.
        label_map (dict, optional): Raw mask value -> class index. If :obj:`None`, the identity
            on ``0 .. num_classes - 1``. (default: :obj:`None`)
        void_values (iterable of int, optional): Raw values meaning void/unlabelled.
            (default: :obj:`(255,)`)
        transform (callable, optional): Joint transform; see :class:`SegmentationDataset`.
        ignore_index (int, optional): Label of void pixels in returned masks. (default: :obj:`255`)
        on_error (str, optional): ``"raise"``: a bad sample raises :class:`DatasetError` when it is
            found (missing files at construction, the rest when loaded). ``"skip"``: every sample is
            validated at construction (files decoded, sizes and labels checked), bad ones are
            dropped, listed in :attr:`skipped` and reported with a warning. (default: ``"raise"``)
        num_threads (int, optional): Threads used to validate samples in ``"skip"`` mode.
            (default: :obj:`4`)
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        classes: Sequence[str],
        palette: Sequence[Sequence[int]],
        label_map: dict[int, int] | None = None,
        void_values: Iterable[int] = (255,),
        transform: JointTransform | None = None,
        ignore_index: int = 255,
        on_error: OnError = "raise",
        num_threads: int = 4,
    ) -> None:
        super().__init__(classes, palette, transform=transform, ignore_index=ignore_index)
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.on_error: OnError = on_error
        if label_map is None:
            label_map = {i: i for i in range(self.num_classes)}
        self.label_map: dict[int, int] = {int(k): int(v) for k, v in label_map.items()}
        self.void_values: tuple[int, ...] = tuple(sorted({int(v) for v in void_values}))
        bad = [v for v in self.label_map.values() if not 0 <= v < self.num_classes]
        if bad:
            raise ValueError(f"label_map targets {bad} are not class indices 0..{self.num_classes - 1}")
        self._lut, self._valid = self._build_lut()
        samples = [Sample(Path(s[0]), Path(s[1])) for s in samples]
        if on_error == "raise":
            for s in samples:
                for p, what in ((s.image, "image"), (s.mask, "mask")):
                    if not p.is_file():
                        raise DatasetError(f"missing {what} file: {p}", p)
            self.samples: list[Sample] = samples
        else:
            self.samples = samples
            bad = self._find_bad(num_threads)
            self.skipped = [(p, r) for _, p, r in bad]
            bad_idx = {i for i, _, _ in bad}
            self.samples = [s for i, s in enumerate(samples) if i not in bad_idx]
            if self.skipped:
                first = "; ".join(f"{p}: {r}" for p, r in self.skipped[:3])
                more = f" (and {len(self.skipped) - 3} more)" if len(self.skipped) > 3 else ""
                warnings.warn(
                    f"{type(self).__name__}: skipped {len(self.skipped)} bad sample(s) of "
                    f"{len(samples)}: {first}{more}; see .skipped",
                    stacklevel=3,
                )

    # ------------------------------------------------------------------ labels
    def _build_lut(self) -> tuple[np.ndarray, np.ndarray]:
        size = max([255, *self.label_map.keys(), *self.void_values]) + 1
        lut = np.full(size, self.ignore_index, dtype=np.int64)
        valid = np.zeros(size, dtype=bool)
        for raw in self.void_values:
            if raw >= 0:
                valid[raw] = True
        for raw, cls in self.label_map.items():
            if raw >= 0:
                lut[raw] = cls
                valid[raw] = True
        return lut, valid

    def valid_raw_values(self) -> str:
        """Describes the accepted raw mask values (used in error messages)."""
        keys = sorted(self.label_map)
        if keys == list(range(keys[0], keys[-1] + 1)):
            cls = f"{keys[0]}..{keys[-1]}"
        else:
            cls = ", ".join(map(str, keys))
        void = ", ".join(map(str, self.void_values)) or "none"
        return f"classes {cls}, void {void}"

    def map_labels(self, raw: np.ndarray, path: Path | None = None) -> np.ndarray:
        """Maps a raw mask to train ids.

        Args:
            raw (numpy.ndarray): Raw integer mask ``[H, W]``.
            path (Path, optional): File it came from, for the error message.

        Returns:
            numpy.ndarray: ``int64`` mask ``[H, W]``.

        Raises:
            DatasetError: if ``raw`` has a value that is neither a class nor void.
        """
        if raw.dtype == np.uint8:
            counts = np.bincount(raw.ravel(), minlength=256)
            bad = np.flatnonzero((counts > 0) & ~self._valid[:256])
        else:
            raw = raw.astype(np.int64)
            inside = (raw >= 0) & (raw < len(self._lut))
            if inside.all():
                counts = np.bincount(raw.ravel(), minlength=len(self._lut))
                bad = np.flatnonzero((counts > 0) & ~self._valid)
            else:
                bad = np.unique(raw[~inside | ~self._valid[np.clip(raw, 0, len(self._lut) - 1)]])
        if bad.size:
            shown = ", ".join(map(str, bad[:10].tolist())) + (", ..." if bad.size > 10 else "")
            raise DatasetError(
                f"mask {path} has label value(s) {shown} outside the class set ({self.valid_raw_values()})",
                path,
            )
        return self._lut[raw]

    # ------------------------------------------------------------------ loading
    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Loads and checks one untransformed sample.

        Args:
            index (int): Sample index.

        Returns:
            (numpy.ndarray, numpy.ndarray): ``uint8`` image ``[H, W, 3]`` and ``int64`` mask
            ``[H, W]``.

        Raises:
            DatasetError: naming the file, if a file is missing or corrupt, the image and mask
                sizes differ, or the mask has labels outside the class set.
        """
        s = self.samples[index]
        image = read_image(s.image)
        raw = read_mask(s.mask)
        if image.shape[:2] != raw.shape[:2]:
            (h, w), (mh, mw) = image.shape[:2], raw.shape[:2]
            raise DatasetError(
                f"size mismatch: image {s.image} is {w}x{h} (WxH) but mask {s.mask} is {mw}x{mh}",
                s.mask,
            )
        return image, self.map_labels(raw, s.mask)

    def image_size(self, index: int) -> tuple[int, int]:
        """Native ``(height, width)`` of sample ``index``, from the image file header (cheap).

        Raises:
            DatasetError: if the image is missing or unreadable.
        """
        path = self.samples[index].image
        try:
            with Image.open(path) as im:
                w, h = im.size
        except FileNotFoundError:
            raise DatasetError(f"missing image file: {path}", path) from None
        except (OSError, SyntaxError, ValueError) as e:
            raise DatasetError(f"cannot read image {path}: corrupt or unsupported file ({e})", path) from None
        return h, w

    def check_sample(self, index: int) -> tuple[Path, str] | None:
        """Fully checks sample ``index`` (decodes both files).

        Args:
            index (int): Sample index.

        Returns:
            (Path, str) or None: ``(offending path, reason)``, or :obj:`None` if it is good.
        """
        try:
            self.load(index)
        except DatasetError as e:
            path = e.path if e.path is not None else self.samples[index].image
            return path, str(e)
        return None

    def validate(self, num_threads: int = 4) -> list[tuple[Path, str]]:
        """Checks every sample without raising.

        Args:
            num_threads (int, optional): Decoding threads. (default: :obj:`4`)

        Returns:
            list of (Path, str): ``(offending path, reason)`` for each bad sample, in order.
        """
        return [(p, r) for _, p, r in self._find_bad(num_threads)]

    def _find_bad(self, num_threads: int) -> list[tuple[int, Path, str]]:
        n = len(self.samples)
        if num_threads > 1 and n > 1:
            with ThreadPoolExecutor(max_workers=num_threads) as pool:
                results = list(pool.map(self.check_sample, range(n)))
        else:
            results = [self.check_sample(i) for i in range(n)]
        return [(i, r[0], r[1]) for i, r in enumerate(results) if r is not None]

    def extra_repr(self) -> str:
        root = getattr(self, "root", None)
        split = getattr(self, "split", None)
        parts = [f"root={str(root)!r}"] if root is not None else []
        if split is not None:
            parts.append(f"split={split!r}")
        return ", ".join(parts)
