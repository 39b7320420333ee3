"""Training losses of derived networks: OHEM cross-entropy and median-frequency class weights.

Both are re-exported by :mod:`gasgnn.train`, where they used to live.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

__all__ = ["OhemCrossEntropy", "median_frequency_weights"]


class OhemCrossEntropy(nn.Module):
    r"""Online hard example mining cross-entropy (as in PSPNet/BiSeNet training code).

    Keeps the pixels whose loss exceeds :math:`-\ln(\text{thresh})` (true-class probability below
    ``thresh``), and at least the ``min_kept`` hardest valid pixels, and averages their loss.

    Args:
        ignore_index (int, optional): Ignored target value. (default: :obj:`255`)
        thresh (float, optional): Probability threshold. (default: :obj:`0.7`)
        min_kept (int, optional): Minimum kept pixels per call. (default: :obj:`100000`)
        weight (Tensor, optional): Class weights ``[C]``. (default: :obj:`None`)
    """

    def __init__(
        self, ignore_index: int = 255, thresh: float = 0.7, min_kept: int = 100_000,
        weight: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.ignore_index, self.min_kept = ignore_index, int(min_kept)
        self.loss_thresh = -math.log(thresh)
        self.register_buffer("weight", weight)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        losses = F.cross_entropy(logits, target, weight=self.weight, ignore_index=self.ignore_index,
                                 reduction="none").flatten()
        losses = losses[target.flatten() != self.ignore_index]
        if losses.numel() == 0:
            return logits.sum() * 0.0  # keeps the graph; nothing to learn from this batch
        hard = losses[losses > self.loss_thresh]
        n_min = min(self.min_kept, losses.numel())
        if hard.numel() < n_min:
            hard = losses.topk(n_min).values
        return hard.mean()


def median_frequency_weights(
    dataset: Any, num_classes: int, ignore_index: int = 255, progress: bool = False
) -> Tensor:
    r"""Median-frequency class weights (Eigen & Fergus, 2015), from the untransformed training masks.

    .. math::
        f_c = \frac{\text{pixels of } c}{\text{pixels of images containing } c}, \qquad
        w_c = \frac{\operatorname{median}(f)}{f_c}

    Classes absent from every mask get weight 0.

    Args:
        dataset (Dataset): Training set (a :class:`~gasgnn.data.SegmentationDataset`, or any dataset
            of ``(image, mask)``).
        num_classes (int): Classes.
        ignore_index (int, optional): Ignored value. (default: :obj:`255`)
        progress (bool, optional): Show a progress bar. (default: :obj:`False`)

    Returns:
        Tensor: ``float32`` weights ``[num_classes]``.
    """
    counts = np.zeros(num_classes, dtype=np.float64)
    image_pixels = np.zeros(num_classes, dtype=np.float64)
    for i in tqdm(range(len(dataset)), desc="class weights", leave=False, disable=not progress):
        mask = np.asarray(dataset.load(i)[1]) if hasattr(dataset, "load") else dataset[i][1].numpy()
        m = mask.ravel().astype(np.int64)
        m = m[(m != ignore_index) & (m >= 0) & (m < num_classes)]
        c = np.bincount(m, minlength=num_classes)
        counts += c
        image_pixels[c > 0] += m.size
    freq = np.divide(counts, image_pixels, out=np.zeros_like(counts), where=image_pixels > 0)
    present = freq > 0
    if not present.any():
        raise ValueError("median_frequency_weights: the training masks contain no labelled pixel")
    w = np.where(present, np.median(freq[present]) / np.where(present, freq, 1.0), 0.0)
    return torch.tensor(w, dtype=torch.float32)
