"""Name -> dataset class registry and the :func:`build_dataset` factory.

A dataset registers itself together with what the rest of gasgnn needs to know about it, so adding one
touches one file: its test fixture (a writer of a tiny copy in the on-disk layout, which
``tests/test_registry.py`` builds every registered dataset from) and the one-line description of its
root that ``--root``'s help shows.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from gasgnn.registry import Registry

__all__ = ["DATASETS", "FixtureWriter", "register_dataset", "build_dataset", "available_datasets", "dataset_fixture",
           "dataset_root_help"]

#: Registered dataset classes by name (case-insensitive).
DATASETS: Registry[type] = Registry("dataset", normalize=str.lower)

#: ``writer(root) -> Path``: writes a tiny copy of a dataset under ``root`` and returns the root to read it from.
FixtureWriter = Callable[[Path], Path]

T = TypeVar("T", bound=type)


def register_dataset(
    name: str, overwrite: bool = False, fixture: FixtureWriter | None = None, root_help: str | None = None,
) -> Callable[[T], T]:
    """Class decorator adding a dataset to :data:`DATASETS` under ``name``.

    The class must accept ``root``, ``split`` and ``transform`` keyword arguments.

    Args:
        name (str): Registry name (lower case).
        overwrite (bool, optional): Replace an existing dataset. (default: :obj:`False`)
        fixture (callable, optional): ``writer(root) -> Path`` writing a tiny copy of the dataset (a few
            small images in its real layout) under ``root`` and returning the root to build it from.
            Required for a dataset that reads files: ``tests/test_registry.py`` builds every registered
            dataset from its fixture. :obj:`None` for a dataset that needs no files (generated ones).
            (default: :obj:`None`)
        root_help (str, optional): What ``--root`` points at for this dataset, in a few words (shown
            by ``--help``); :obj:`None` for a dataset without a root. (default: :obj:`None`)

    Returns:
        callable: The decorator (returns the class unchanged).
    """

    return DATASETS.register(name, overwrite=overwrite, fixture=fixture, root_help=root_help)


def dataset_fixture(name: str) -> FixtureWriter | None:
    """The fixture writer registered with dataset ``name`` (:obj:`None`: it reads no files)."""
    return DATASETS.meta(name).get("fixture")


def dataset_root_help(name: str) -> str | None:
    """What ``--root`` points at for dataset ``name`` (:obj:`None`: it has no root)."""
    return DATASETS.meta(name).get("root_help")


def available_datasets() -> list[str]:
    """Returns the registered dataset names, sorted."""
    return DATASETS.names()


def build_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    split: str | None = None,
    transform: Callable[[Any, Any], tuple[Any, Any]] | None = None,
    **kwargs: Any,
) -> Any:
    """Builds a dataset by name.

    Args:
        name (str): ``"camvid"``, ``"cityscapes"``, ``"folder"`` or ``"synthetic"`` (or any name
            added with :func:`register_dataset`); case-insensitive.
        root (str or PathLike, optional): Dataset root (ignored by ``"synthetic"``; CamVid falls
            back to :func:`~gasgnn.data.camvid.default_camvid_root`).
        split (str, optional): Split name; :obj:`None` picks the dataset's default (``"train"``, or
            all images for ``"folder"``).
        transform (callable, optional): Joint transform; :obj:`None` is the dataset default
            (tensor conversion + ImageNet normalisation).
        **kwargs: Further dataset-specific arguments (``ignore_index``, ``on_error``, ...), and for any
            dataset ``keep_on``: a device (``"cpu"``, ``"cuda"``) to keep the decoded samples on
            (:meth:`~gasgnn.data.base.SegmentationDataset.keep_decoded`; ``--data-arg keep_on=cuda``).

    Returns:
        SegmentationDataset: The dataset.

    Raises:
        KeyError: for an unknown name (the message lists the known ones).
    """
    cls = DATASETS.get(name)
    if split is not None:
        kwargs["split"] = split
    keep_on = kwargs.pop("keep_on", None)
    ds = cls(root=root, transform=transform, **kwargs)
    if keep_on not in (None, "", False, "none"):
        try:
            device = torch.device(str(keep_on))
        except RuntimeError:
            raise ValueError(f"--data-arg keep_on={keep_on}: expected a device (cpu, cuda, cuda:1) or none") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--data-arg keep_on={keep_on}: no CUDA device on this machine")
        ds.keep_decoded(device)
    return ds
