"""Name -> dataset class registry and the :func:`build_dataset` factory."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from gasgnn.registry import Registry

__all__ = ["DATASETS", "register_dataset", "build_dataset", "available_datasets"]

#: Registered dataset classes by name (case-insensitive).
DATASETS: Registry[type] = Registry("dataset", normalize=str.lower)

T = TypeVar("T", bound=type)


def register_dataset(name: str, overwrite: bool = False) -> Callable[[T], T]:
    """Class decorator adding a dataset to :data:`DATASETS` under ``name``.

    The class must accept ``root``, ``split`` and ``transform`` keyword arguments.

    Args:
        name (str): Registry name (lower case).
        overwrite (bool, optional): Replace an existing dataset. (default: :obj:`False`)

    Returns:
        callable: The decorator (returns the class unchanged).
    """

    return DATASETS.register(name, overwrite=overwrite)


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
        **kwargs: Further dataset-specific arguments (``ignore_index``, ``on_error``, ...).

    Returns:
        SegmentationDataset: The dataset.

    Raises:
        KeyError: for an unknown name (the message lists the known ones).
    """
    cls = DATASETS.get(name)
    if split is not None:
        kwargs["split"] = split
    return cls(root=root, transform=transform, **kwargs)
