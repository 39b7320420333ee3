"""Dataset statistics."""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset, Subset

__all__ = ["class_histogram"]


def _raw_loader(dataset: Dataset):
    """Returns ``(base dataset, index map)`` so that untransformed masks can be read."""
    indices = None
    while isinstance(dataset, Subset):
        idx = list(dataset.indices)
        indices = idx if indices is None else [idx[i] for i in indices]
        dataset = dataset.dataset
    return dataset, indices


def class_histogram(dataset: Dataset, max_samples: int | None = None) -> np.ndarray:
    """Counts the pixels of each class over a dataset (untransformed masks when the dataset has
    a ``load`` method, e.g. every :class:`~gasgnn.data.SegmentationDataset`; works through
    :class:`~torch.utils.data.Subset`).

    Args:
        dataset (Dataset): Dataset with ``num_classes`` and ``ignore_index`` attributes (or a
            :class:`~torch.utils.data.Subset` of one).
        max_samples (int, optional): Only count the first ``max_samples`` samples.

    Returns:
        numpy.ndarray: ``int64`` counts of length ``num_classes + 1``; the last entry counts
        ignored pixels. Divide by the sum for pixel fractions.
    """
    base, indices = _raw_loader(dataset)
    num_classes = int(base.num_classes)
    ignore = int(base.ignore_index)
    n = len(indices) if indices is not None else len(base)
    if max_samples is not None:
        n = min(n, int(max_samples))
    counts = np.zeros(num_classes + 1, dtype=np.int64)
    for k in range(n):
        i = indices[k] if indices is not None else k
        if hasattr(base, "load"):
            mask = np.asarray(base.load(i)[1])
        else:
            mask = base[i][1].numpy()
        mask = mask.ravel().astype(np.int64)
        valid = (mask >= 0) & (mask < num_classes)
        counts[:num_classes] += np.bincount(mask[valid], minlength=num_classes)
        counts[num_classes] += int(np.count_nonzero(~valid & (mask == ignore)))
    return counts
