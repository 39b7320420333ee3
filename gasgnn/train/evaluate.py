"""Evaluation of trained segmentation networks: mIoU over a dataset, with multi-scale and flip."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from gasgnn.metrics import ConfusionMatrix

__all__ = ["evaluate", "predict"]


def _logits(model: nn.Module, x: Tensor) -> Tensor:
    out = model(x)
    return out[0] if isinstance(out, (tuple, list)) else out


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, scales: Sequence[float] = (1.0,), flip: bool = False) -> Tensor:
    """Class probabilities with optional multi-scale and horizontal-flip test-time augmentation.

    Each scale (and its mirror, with ``flip``) is run at the rescaled size, its softmax resized back to
    the input size, and the probabilities averaged.

    Args:
        model (nn.Module): Network in eval mode.
        images (Tensor): ``[N, 3, H, W]``.
        scales (sequence of float, optional): Input scales. (default: ``(1.0,)``)
        flip (bool, optional): Also average the mirrored prediction. (default: :obj:`False`)

    Returns:
        Tensor: ``[N, C, H, W]`` averaged probabilities.
    """
    if not scales:
        raise ValueError("predict: scales must not be empty")
    H, W = images.shape[-2:]
    total: Tensor | None = None
    n = 0
    for s in scales:
        x = images if s == 1.0 else F.interpolate(
            images, size=(max(1, round(H * s)), max(1, round(W * s))), mode="bilinear", align_corners=False
        )
        views = [(x, False), (x.flip(-1), True)] if flip else [(x, False)]
        for v, flipped in views:
            out = _logits(model, v).float()
            if flipped:
                out = out.flip(-1)
            if out.shape[-2:] != (H, W):
                out = F.interpolate(out, size=(H, W), mode="bilinear", align_corners=False)
            p = out.softmax(dim=1)
            total = p if total is None else total + p
            n += 1
    assert total is not None
    return total / n


def _sample_names(dataset: Any) -> list[str] | None:
    """File stems of the samples (for saved predictions), when the dataset lists files."""
    samples = getattr(dataset, "samples", None)
    if samples is None:
        return None
    try:
        return [Path(s[0]).stem for s in samples]
    except (TypeError, IndexError):
        return None


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Any,
    num_classes: int,
    ignore_index: int = 255,
    device: str | torch.device = "cpu",
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    amp: bool = False,
    save_dir: str | os.PathLike | None = None,
    palette: Sequence[Sequence[int]] | None = None,
    class_names: Sequence[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluates a network over a loader: per-class IoU, mIoU and pixel accuracy (see :mod:`gasgnn.metrics`).

    Args:
        model (nn.Module): The network (put in eval mode here and left so).
        loader (DataLoader): Yields ``(images, masks)``; not shuffled when saving predictions.
        num_classes (int): Classes.
        ignore_index (int, optional): Ignored mask value. (default: :obj:`255`)
        device (str or torch.device, optional): Where to run. (default: ``"cpu"``)
        scales (sequence of float, optional): Test scales. (default: ``(1.0,)``)
        flip (bool, optional): Flip augmentation. (default: :obj:`False`)
        amp (bool, optional): fp16 autocast (CUDA only). (default: :obj:`False`)
        save_dir (str or PathLike, optional): Writes colourised predictions ``<name>.png`` here.
            (default: :obj:`None`)
        palette (sequence of RGB, optional): Colours for ``save_dir``. (default: the dataset's)
        class_names (sequence of str, optional): Names in the result. (default: the dataset's)
        progress (bool, optional): Show a progress bar. (default: :obj:`True`)

    Returns:
        dict: :meth:`ConfusionMatrix.compute` output plus ``scales``, ``flip``, ``images``.
    """
    from gasgnn.data import colorize

    device = torch.device(device)
    model.eval().to(device)
    dataset = getattr(loader, "dataset", None)
    palette = palette if palette is not None else getattr(dataset, "palette", None)
    class_names = class_names if class_names is not None else getattr(dataset, "classes", None)
    cm = ConfusionMatrix(num_classes, ignore_index, device=device,
                         class_names=list(class_names) if class_names is not None else None)
    names = _sample_names(dataset) if save_dir is not None else None
    if save_dir is not None:
        if palette is None:
            raise ValueError("evaluate: save_dir needs a palette (the dataset has none)")
        save_dir = Path(save_dir)
        save_dir.mkdir(parents=True, exist_ok=True)
    use_amp = amp and device.type == "cuda"
    seen = 0
    for images, masks in tqdm(loader, desc="eval", leave=False, disable=not progress):
        images, masks = images.to(device, non_blocking=True), masks.to(device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
            probs = predict(model, images, scales, flip)
        pred = probs.argmax(dim=1)
        cm.update(pred, masks)
        if save_dir is not None:
            from PIL import Image

            for j, p in enumerate(pred.cpu()):
                i = seen + j
                stem = names[i] if names is not None and i < len(names) else f"{i:05d}"
                Image.fromarray(colorize(p, palette)).save(Path(save_dir) / f"{stem}.png")
        seen += images.shape[0]
    cm.all_reduce()
    out = cm.compute()
    out.update({"scales": [float(s) for s in scales], "flip": bool(flip), "images": seen})
    return out
