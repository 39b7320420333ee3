"""Evaluation of trained segmentation networks: model specs, checkpoint loading and mIoU evaluation.

A *model spec* is a small JSON-able dict that rebuilds a network, stored in every checkpoint so that
``gasgnn eval``, ``bench`` and ``export`` need nothing but the checkpoint:

- ``{"kind": "gasnet", "genotype": {...}, "num_classes": 11, "head": "aspp", "head_channels": 128,
  "aux": false}``: a :class:`~gasgnn.net.GASNet` (searched or hand-designed genotype);
- ``{"kind": "reference", "name": "smp_unet_r18", "num_classes": 11}``: a module reference network.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from gasgnn.graph import Genotype
from gasgnn.metrics import ConfusionMatrix


def gasnet_spec(
    genotype: Genotype, num_classes: int, head: str = "aspp", head_channels: int = 128, aux: bool = False
) -> dict[str, Any]:
    """The model spec of a :class:`~gasgnn.net.GASNet`.

    Args:
        genotype (Genotype): The architecture.
        num_classes (int): Output classes (overrides the genotype space's).
        head (str, optional): Head name. (default: :obj:`"aspp"`)
        head_channels (int, optional): Head width. (default: :obj:`128`)
        aux (bool, optional): With the auxiliary head. (default: :obj:`False`)

    Returns:
        dict: The spec.
    """
    return {
        "kind": "gasnet", "genotype": genotype.to_dict(), "num_classes": int(num_classes), "head": head,
        "head_channels": int(head_channels), "aux": bool(aux),
    }


def build_model(spec: dict[str, Any], aux: bool | None = None, head: str | None = None) -> nn.Module:
    """Builds the network described by a model spec (random weights).

    Args:
        spec (dict): See the module docstring.
        aux (bool, optional): Override the spec's auxiliary head (e.g. :obj:`False` for inference).
            (default: :obj:`None`)
        head (str, optional): Override the head. (default: :obj:`None`)

    Returns:
        nn.Module: The network.
    """
    kind = spec.get("kind")
    if kind == "gasnet":
        from gasgnn.net import GASNet
        from gasgnn.space import SearchSpace

        g = Genotype.from_dict(spec["genotype"])
        space = (g.space or SearchSpace(num_cells=len(g), num_nodes=g.cells[0].num_nodes)).replace(
            num_classes=int(spec["num_classes"])
        )
        return GASNet(
            g, space=space, head=head or spec.get("head", "aspp"),
            head_channels=int(spec.get("head_channels", 128)),
            aux_head=spec.get("aux", False) if aux is None else aux,
        )
    if kind == "reference":
        from gasgnn.reference_nets import build_reference

        return build_reference(spec["name"], int(spec["num_classes"]), **spec.get("kwargs", {}))
    raise ValueError(f"model spec: unknown kind {kind!r} (expected 'gasnet' or 'reference')")


def load_weights(model: nn.Module, state: dict[str, Tensor], where: str = "weights") -> None:
    """Loads a state dict, tolerating only auxiliary-head keys on either side.

    A network trained with ``--aux`` carries ``aux.*`` weights that inference builds do not need.

    Raises:
        ValueError: naming ``where`` and the first offending keys, on any other mismatch.
    """
    own = model.state_dict()
    state = {k: v for k, v in state.items() if k in own or not k.startswith("aux.")}
    missing = [k for k in own if k not in state and not k.startswith("aux.")]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise ValueError(
            f"{where}: weights do not fit the network (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    shapes = [k for k, v in state.items() if tuple(v.shape) != tuple(own[k].shape)]
    if shapes:
        k = shapes[0]
        raise ValueError(
            f"{where}: shape of '{k}' is {tuple(state[k].shape)}, the network has {tuple(own[k].shape)}"
        )
    model.load_state_dict(state, strict=False)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Reads a checkpoint written by :class:`~gasgnn.train.Trainer`, with errors naming the file.

    Returns:
        dict: With at least ``model`` (state dict) and ``spec`` (model spec).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # torch raises several types for a corrupt file
        raise ValueError(f"checkpoint {path} cannot be read: {e}") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "spec" not in ckpt:
        raise ValueError(f"checkpoint {path}: not a gasgnn training checkpoint (needs 'model' and 'spec')")
    return ckpt


def load_model(
    checkpoint: str | os.PathLike | None = None,
    genotype: Genotype | None = None,
    weights: str | os.PathLike | None = None,
    num_classes: int | None = None,
    head: str | None = None,
    head_channels: int = 128,
) -> tuple[nn.Module, dict[str, Any]]:
    """Builds an inference network (eval mode, no auxiliary head) from a checkpoint or a genotype.

    Args:
        checkpoint (str or PathLike, optional): A training checkpoint (``best.pt``/``last.pt``).
        genotype (Genotype, optional): Used when ``checkpoint`` is :obj:`None`.
        weights (str or PathLike, optional): With ``genotype``: a checkpoint or a raw state dict file;
            :obj:`None` keeps random weights (fine for benchmarks).
        num_classes (int, optional): With ``genotype``: classes (default: the genotype space's).
        head (str, optional): Head override (with ``genotype``: default ``'aspp'``).
        head_channels (int, optional): Head width with ``genotype``. (default: :obj:`128`)

    Returns:
        (nn.Module, dict): The network in eval mode and its model spec.
    """
    if checkpoint is not None:
        ckpt = load_checkpoint(checkpoint)
        spec = dict(ckpt["spec"])
        if head is not None and head != spec.get("head"):
            raise ValueError(f"checkpoint {checkpoint} has head '{spec.get('head')}', not '{head}'")
        model = build_model(spec, aux=False)
        load_weights(model, ckpt["model"], str(checkpoint))
        return model.eval(), spec
    if genotype is None:
        raise ValueError("load_model: give a checkpoint or a genotype")
    nc = num_classes or (genotype.space.num_classes if genotype.space is not None else 11)
    spec = gasnet_spec(genotype, nc, head or "aspp", head_channels)
    model = build_model(spec, aux=False)
    if weights is not None:
        p = Path(weights)
        if not p.is_file():
            raise FileNotFoundError(f"weights file not found: {p}")
        state = torch.load(p, map_location="cpu", weights_only=False)
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]
        if not isinstance(state, dict):
            raise ValueError(f"weights file {p}: expected a state dict or a training checkpoint")
        load_weights(model, state, str(p))
    return model.eval(), spec


def json_safe(obj: Any) -> Any:
    """Replaces NaN and infinite floats by :obj:`None` (recursively) so the output is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


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
