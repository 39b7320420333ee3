"""Segmentation metrics from a confusion matrix: per-class IoU, mIoU, pixel and mean accuracy.

The confusion matrix ``mat[t, p]`` counts pixels of true class ``t`` predicted as ``p``; pixels whose
target equals ``ignore_index`` are dropped. All metrics derive from it, so partial matrices from
several batches, processes or GPUs simply add up (:meth:`ConfusionMatrix.merge`,
:meth:`ConfusionMatrix.all_reduce`).

**mIoU rule.** ``IoU_c = TP_c / (TP_c + FP_c + FN_c)``. A class whose union ``TP + FP + FN`` is zero
(absent from both target and prediction over everything seen) has IoU ``NaN`` and is excluded from the
mean; a class that is only predicted (never in the target) has IoU 0 and counts. Over a whole
validation set every class is normally present, so this equals the usual mean over all classes.

Example::

    cm = ConfusionMatrix(num_classes=11)
    for image, mask in loader:
        cm.update(model(image), mask)   # logits [N, C, H, W] or labels [N, H, W]
    print(cm.compute()["miou"])
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor


def _labels(pred: Tensor) -> Tensor:
    """Turns logits ``[N, C, H, W]`` into labels ``[N, H, W]``; passes integer labels through."""
    if pred.is_floating_point():
        if pred.dim() < 2:
            raise ValueError(f"logits must have a class dimension [N, C, ...], got shape {tuple(pred.shape)}")
        return pred.argmax(dim=1)
    return pred


def confusion_matrix(
    pred: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = 255
) -> Tensor:
    """Computes the ``[C, C]`` confusion matrix of one prediction with :func:`torch.bincount`.

    Args:
        pred (Tensor): Predicted labels ``[N, H, W]`` (integer) or logits ``[N, C, H, W]`` (float).
        target (Tensor): True labels ``[N, H, W]``.
        num_classes (int): Number of classes ``C``.
        ignore_index (int, optional): Target value whose pixels are skipped; :obj:`None` keeps all.
            (default: :obj:`255`)

    Returns:
        Tensor: ``int64`` matrix ``mat[t, p]`` on ``target``'s device.

    Raises:
        ValueError: On shape mismatch or labels outside ``[0, num_classes)``.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    labels = _labels(pred)
    if labels.shape != target.shape:
        raise ValueError(
            f"prediction shape {tuple(labels.shape)} does not match target shape {tuple(target.shape)}"
        )
    labels = labels.reshape(-1).long()
    target = target.reshape(-1).long().to(labels.device)
    if ignore_index is not None:
        keep = target != ignore_index
        labels, target = labels[keep], target[keep]
    if target.numel():
        for name, t in (("target", target), ("prediction", labels)):
            lo, hi = int(t.min()), int(t.max())
            if lo < 0 or hi >= num_classes:
                raise ValueError(
                    f"{name} labels must lie in [0, {num_classes}) (ignore_index={ignore_index}), "
                    f"found values in [{lo}, {hi}]"
                )
    flat = target * num_classes + labels
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def metrics_from_matrix(mat: Tensor, class_names: list[str] | None = None) -> dict[str, Any]:
    """Derives IoU and accuracy metrics from a confusion matrix (see the module docstring for the rule).

    Args:
        mat (Tensor): ``[C, C]`` counts, ``mat[t, p]``.
        class_names (list[str], optional): Names to attach as ``"classes"``. (default: :obj:`None`)

    Returns:
        dict: ``per_class_iou`` (list of float, ``NaN`` for absent classes), ``miou``, ``pixel_acc``,
        ``mean_acc``, ``per_class_acc``, ``pixels`` (counted pixels) and, if given, ``classes``.
        Metrics are fractions in ``[0, 1]``; ``NaN`` when nothing was counted.
    """
    m = mat.double().cpu()
    tp = m.diag()
    gt = m.sum(dim=1)  # TP + FN
    pr = m.sum(dim=0)  # TP + FP
    union = gt + pr - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, math.nan))
    acc = torch.where(gt > 0, tp / gt.clamp(min=1), torch.full_like(tp, math.nan))
    total = m.sum()

    def nanmean(v: Tensor) -> float:
        ok = ~torch.isnan(v)
        return float(v[ok].mean()) if bool(ok.any()) else math.nan

    out: dict[str, Any] = {
        "miou": nanmean(iou),
        "pixel_acc": float(tp.sum() / total) if total > 0 else math.nan,
        "mean_acc": nanmean(acc),
        "per_class_iou": [float(v) for v in iou],
        "per_class_acc": [float(v) for v in acc],
        "pixels": int(total),
    }
    if class_names is not None:
        if len(class_names) != m.shape[0]:
            raise ValueError(f"{len(class_names)} class names for a {m.shape[0]}-class confusion matrix")
        out["classes"] = list(class_names)
    return out


class ConfusionMatrix:
    r"""Accumulates a confusion matrix over batches and computes segmentation metrics.

    .. math::
        \mathrm{IoU}_c = \frac{TP_c}{TP_c + FP_c + FN_c}, \qquad
        \mathrm{mIoU} = \frac{1}{|\{c : TP_c + FP_c + FN_c > 0\}|} \sum_{c} \mathrm{IoU}_c

    Args:
        num_classes (int): Number of classes ``C``.
        ignore_index (int, optional): Target value to skip. (default: :obj:`255`)
        device (torch.device or str, optional): Where the matrix lives. (default: CPU)
        class_names (list[str], optional): Class names reported by :meth:`compute`. (default: :obj:`None`)

    Attributes:
        mat (Tensor): The ``[C, C]`` ``int64`` counts, ``mat[t, p]``.
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = 255,
        device: torch.device | str | None = None,
        class_names: list[str] | None = None,
    ) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = list(class_names) if class_names is not None else None
        self.mat = torch.zeros(num_classes, num_classes, dtype=torch.long, device=device)

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> ConfusionMatrix:
        """Adds one batch.

        Args:
            pred (Tensor): Labels ``[N, H, W]`` or logits ``[N, C, H, W]``.
            target (Tensor): Labels ``[N, H, W]``.

        Returns:
            ConfusionMatrix: ``self``.
        """
        cm = confusion_matrix(pred.detach(), target, self.num_classes, self.ignore_index)
        self.mat += cm.to(self.mat.device)
        return self

    def reset(self) -> None:
        """Zeroes the counts."""
        self.mat.zero_()

    def merge(self, other: ConfusionMatrix | Tensor) -> ConfusionMatrix:
        """Adds another matrix's counts (from another worker or split) into this one.

        Args:
            other (ConfusionMatrix or Tensor): Matrix of the same size.

        Returns:
            ConfusionMatrix: ``self``.
        """
        mat = other.mat if isinstance(other, ConfusionMatrix) else other
        if tuple(mat.shape) != tuple(self.mat.shape):
            raise ValueError(f"cannot merge a {tuple(mat.shape)} matrix into a {tuple(self.mat.shape)} one")
        self.mat += mat.to(self.mat.device, torch.long)
        return self

    def all_reduce(self, group: Any = None) -> ConfusionMatrix:
        """Sums the counts over all processes of ``torch.distributed`` (no-op when not initialised).

        Args:
            group (ProcessGroup, optional): The process group. (default: the world)

        Returns:
            ConfusionMatrix: ``self``.
        """
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.mat, op=dist.ReduceOp.SUM, group=group)
        return self

    def compute(self) -> dict[str, Any]:
        """Computes the metrics; see :func:`metrics_from_matrix`."""
        return metrics_from_matrix(self.mat, self.class_names)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.num_classes}, ignore_index={self.ignore_index})"
