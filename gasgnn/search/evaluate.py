"""The supernet's per-epoch validation: loss and mIoU under a fixed distribution of op weights."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gasgnn import distributed as dist
from gasgnn.metrics import ConfusionMatrix

__all__ = ["evaluate_supernet"]


@torch.no_grad()
def evaluate_supernet(net: nn.Module, weights: Tensor, loader: Iterable, num_classes: int, ignore_index: int = 255,
                      device: str | torch.device = "cpu", max_batches: int | None = None) -> tuple[float, float]:
    """(mean cross-entropy, mIoU) of a supernet with op ``weights`` on ``loader``.

    In a ``torch.distributed`` run each rank evaluates its shard and the counts are summed.

    Args:
        net (nn.Module): The supernet (put in eval mode).
        weights (Tensor): Op weights ``[num_cells * E, K]``, e.g. ``softmax(alpha'/tau)``.
        loader (iterable): Batches ``(images, masks)``.
        num_classes (int): Classes.
        ignore_index (int, optional): Label to ignore. (default: :obj:`255`)
        device (str or torch.device, optional): (default: :obj:`"cpu"`)
        max_batches (int, optional): Stop after this many batches. (default: :obj:`None`)
    """
    net.eval()
    device = torch.device(device)
    # Distributed: the counts live on this rank's device (NCCL reduces GPU tensors only).
    cm = ConfusionMatrix(num_classes, ignore_index=ignore_index, device=device if dist.is_distributed() else None)
    tot, n = 0.0, 0
    for i, (x, y) in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        x, y = x.to(device), y.to(device)
        logits = net(x, weights=weights)
        tot += float(F.cross_entropy(logits.float(), y, ignore_index=ignore_index)) * x.size(0)
        n += x.size(0)
        cm.update(logits.argmax(1), y)
    if dist.is_distributed():  # each rank saw its own shard; sum the counts
        cm.all_reduce()
        tot, n = dist.reduce_scalar(tot, "sum"), int(dist.reduce_scalar(n, "sum"))
    return tot / max(n, 1), float(cm.compute()["miou"])
