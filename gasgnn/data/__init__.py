"""Datasets, joint transforms and loaders for semantic segmentation.

Every dataset returns ``(image, mask)``: a normalised float image ``[3, H, W]`` and an ``int64``
mask ``[H, W]`` with class indices ``0 .. num_classes - 1`` and ``ignore_index`` (default 255)
for void pixels. Build one by name with :func:`build_dataset` (``"camvid"``, ``"cityscapes"``,
``"folder"``, ``"synthetic"``). A new dataset is one module: every module of this package is imported
here, so its ``@register_dataset(name, fixture=..., root_help=...)`` is all it needs (or a module of your
own, loaded with ``gasgnn --plugin``; see ``docs/extending.md``).

Example:
    >>> from gasgnn.data import build_dataset, train_transform, make_loader, split_search
    >>> ds = build_dataset("synthetic", transform=train_transform((64, 64)), num_images=16)
    >>> w_half, a_half = split_search(ds, seed=0)
    >>> images, masks = next(iter(make_loader(w_half, batch_size=4, shuffle=True, seed=0)))
    >>> images.shape, masks.shape
    (torch.Size([4, 3, 64, 64]), torch.Size([4, 64, 64]))
"""

import importlib as _importlib
import pkgutil as _pkgutil

from .base import PairedFileDataset, Sample, SegmentationDataset
from .camvid import CAMVID_CLASSES, CAMVID_PALETTE, CAMVID_VOID, CamVid, default_camvid_root
from .cityscapes import CITYSCAPES_CLASSES, CITYSCAPES_ID_TO_TRAINID, CITYSCAPES_PALETTE, Cityscapes
from .folder import FolderDataset, default_palette, read_classes_file, write_classes_file
from .io import IMAGE_EXTENSIONS, DatasetError, colorize, fake_image, fake_labels, read_image, read_mask
from .loaders import (
    Loader,
    default_workers,
    kept_on_gpu,
    make_loader,
    search_loaders,
    seed_worker,
    split_search,
    worker_error,
)
from .pack import PACK_FORMAT, PACK_MANIFEST, pack_camvid
from .registry import (
    DATASETS,
    FixtureWriter,
    available_datasets,
    build_dataset,
    dataset_fixture,
    dataset_root_help,
    register_dataset,
)
from .stats import class_histogram
from .synthetic import SyntheticStreets
from .synthgen import SYNTH_CLASSES, SYNTH_PALETTE, render_street
from .transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomScale,
    Resize,
    ToTensor,
    denormalize,
    eval_transform,
    to_tensors,
    train_transform,
)

__all__ = [
    # base
    "DatasetError",
    "Sample",
    "SegmentationDataset",
    "PairedFileDataset",
    "IMAGE_EXTENSIONS",
    "read_image",
    "read_mask",
    "colorize",
    "fake_image",
    "fake_labels",
    # registry
    "DATASETS",
    "build_dataset",
    "register_dataset",
    "available_datasets",
    "dataset_fixture",
    "dataset_root_help",
    "FixtureWriter",
    # datasets
    "CamVid",
    "CAMVID_CLASSES",
    "CAMVID_PALETTE",
    "CAMVID_VOID",
    "default_camvid_root",
    "pack_camvid",
    "PACK_FORMAT",
    "PACK_MANIFEST",
    "Cityscapes",
    "CITYSCAPES_CLASSES",
    "CITYSCAPES_PALETTE",
    "CITYSCAPES_ID_TO_TRAINID",
    "FolderDataset",
    "read_classes_file",
    "write_classes_file",
    "default_palette",
    "SyntheticStreets",
    "SYNTH_CLASSES",
    "SYNTH_PALETTE",
    "render_street",
    # transforms
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
    # loaders
    "Loader",
    "default_workers",
    "kept_on_gpu",
    "worker_error",
    "make_loader",
    "search_loaders",
    "seed_worker",
    "split_search",
    # stats
    "class_histogram",
]

# Every module of the package registers what it defines: a dataset module needs no import line above.
for _module in _pkgutil.iter_modules(__path__):
    _importlib.import_module(f"{__name__}.{_module.name}")
