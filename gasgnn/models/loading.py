"""Model specs and loading: rebuild a network from a checkpoint or a genotype.

A *model spec* is a small JSON-able dict that rebuilds a network, stored in every checkpoint so that
``gasgnn eval``, ``bench`` and ``export`` need nothing but the checkpoint:

- ``{"kind": "gasnet", "genotype": {...}, "num_classes": 11, "head": "aspp", "head_channels": 128,
  "aux": false}``: a :class:`~gasgnn.models.GASNet` (searched or hand-designed genotype);
- ``{"kind": "reference", "name": "smp_unet_r18", "num_classes": 11}``: a module reference network.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gasgnn.genotype import Genotype, get_reference
from gasgnn.models.net import GASNet
from gasgnn.models.pretrained import GenotypeDrawer
from gasgnn.space import SearchSpace

__all__ = ["build_model", "build_reference", "gasnet_spec", "load_checkpoint", "load_model", "load_weights",
           "save_pretrained_from_checkpoint"]


def build_reference(
    name: str, num_classes: int, space: SearchSpace | None = None, head: str = "aspp", **kwargs: Any
) -> nn.Module:
    """Builds a reference network.

    Args:
        name (str): Registered reference name.
        num_classes (int): Output classes.
        space (SearchSpace, optional): Space of genotype references. (default: :obj:`SearchSpace()`)
        head (str, optional): Head of genotype references. (default: :obj:`"aspp"`)
        **kwargs: Passed to :class:`~gasgnn.models.net.GASNet` or the module factory.

    Returns:
        nn.Module: Mapping ``[N, 3, H, W]`` to logits ``[N, num_classes, H, W]``.
    """
    ref = get_reference(name)
    if ref.genotype_fn is not None:
        space = (space or SearchSpace()).replace(num_classes=num_classes)
        return GASNet(ref.genotype_fn(space), space=space, head=head, **kwargs)
    assert ref.module_fn is not None
    return ref.module_fn(num_classes, **kwargs)


def gasnet_spec(
    genotype: Genotype, num_classes: int, head: str = "aspp", head_channels: int = 128, aux: bool = False
) -> dict[str, Any]:
    """The model spec of a :class:`~gasgnn.models.net.GASNet`.

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
    check: Callable[[dict[str, Any]], None] | None = None,
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
        check (callable, optional): Called with the model spec before the network is built (e.g. a memory
            check that refuses a network that cannot fit: :func:`~gasgnn.models.memory.check_memory`).

    Returns:
        (nn.Module, dict): The network in eval mode and its model spec.
    """
    if checkpoint is not None:
        ckpt = load_checkpoint(checkpoint)
        spec = dict(ckpt["spec"])
        if head is not None and head != spec.get("head"):
            raise ValueError(f"checkpoint {checkpoint} has head '{spec.get('head')}', not '{head}'")
        if check is not None:
            check(spec)
        model = build_model(spec, aux=False)
        load_weights(model, ckpt["model"], str(checkpoint))
        return model.eval(), spec
    if genotype is None:
        raise ValueError("load_model: give a checkpoint or a genotype")
    nc = num_classes or (genotype.space.num_classes if genotype.space is not None else 11)
    spec = gasnet_spec(genotype, nc, head or "aspp", head_channels)
    if check is not None:
        check(spec)
    model = build_model(spec, aux=False)
    if weights is not None:
        p = Path(weights)
        if not p.is_file():
            raise FileNotFoundError(f"weights file not found: {p}")
        try:
            state = torch.load(p, map_location="cpu", weights_only=False)
        except Exception as e:  # garbage, empty or truncated files raise many types
            raise ValueError(f"weights file {p} cannot be read ({type(e).__name__}: {e}); expected a state dict "
                             f"or a training checkpoint") from None
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]
        if not isinstance(state, dict):
            raise ValueError(f"weights file {p}: expected a state dict or a training checkpoint")
        load_weights(model, state, str(p))
    return model.eval(), spec


def save_pretrained_from_checkpoint(
    checkpoint: str | os.PathLike,
    save_directory: str | os.PathLike,
    metadata: dict[str, Any] | None = None,
    draw: GenotypeDrawer | None = None,
    overwrite: bool = False,
) -> Path:
    """Writes the network of a training checkpoint as a pretrained directory (``gasgnn train``, ``export``).

    What the checkpoint knows fills the card: the dataset's name, classes, palette and ignore index, the
    validation mIoU (``best.pt``) and the training device; ``metadata`` adds to it and wins over it.

    Args:
        checkpoint (str or PathLike): ``best.pt`` or ``last.pt`` of :class:`~gasgnn.train.Trainer`.
        save_directory (str or PathLike): See :meth:`~gasgnn.models.GASNet.save_pretrained`.
        metadata (dict, optional): Fields of :data:`~gasgnn.models.CARD_FIELDS`. (default: :obj:`None`)
        draw (callable, optional): ``draw(genotype, path)``, e.g. :func:`gasgnn.viz.draw_network`.
            (default: :obj:`None`)
        overwrite (bool, optional): Replace a pretrained network in the directory. (default: :obj:`False`)

    Returns:
        Path: ``save_directory``.
    """
    ckpt = load_checkpoint(checkpoint)
    spec = ckpt["spec"]
    if spec.get("kind") != "gasnet":
        raise ValueError(f"checkpoint {checkpoint}: only GASNet checkpoints can be saved as pretrained networks "
                         f"(this one is {spec.get('kind')!r} {spec.get('name', '')})")
    model = build_model(spec)
    load_weights(model, ckpt["model"], str(checkpoint))
    ds = ckpt.get("dataset") or {}
    known: dict[str, Any] = {"dataset": ds.get("name")}
    miou = ckpt.get("miou", ckpt.get("best_miou"))
    if isinstance(miou, float) and math.isfinite(miou) and 0.0 <= miou <= 1.0:  # NaN: trained without validation
        known["miou"] = miou
    device = (ckpt.get("config") or {}).get("device")
    if isinstance(device, str) and device != "auto":
        known["train_device"] = device
    known.update(metadata or {})
    names = ds.get("classes") or None
    n = model.space.num_classes
    return model.save_pretrained(
        save_directory, classes=names if names and len(names) == n else None,
        palette=ds.get("palette") if names and len(ds.get("palette") or []) == n else None,
        ignore_index=ds.get("ignore_index"), metadata=known, draw=draw, overwrite=overwrite,
    )
