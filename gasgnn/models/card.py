"""The metadata and model card (``README.md``) of a pretrained network directory.

The metadata are what make a network reusable by others: where its mIoU comes from and how fast it is on
which device and runtime. Every field is optional; the card writes "not measured" for the ones not given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["CARD_FIELDS", "NOT_MEASURED", "check_classes", "check_metadata", "render_card"]

#: Metadata fields of a pretrained network: name -> what it records.
CARD_FIELDS: dict[str, str] = {
    "dataset": "dataset the weights were trained on (e.g. 'camvid')",
    "miou": "validation mIoU of these weights, a fraction in [0, 1]",
    "train_device": "device the network was trained on (e.g. 'cuda:0', 'cpu')",
    "device": "device the latency figures are for (e.g. a CPU or GPU model name)",
    "latency_backend": "runtime the latency figures are for ('torch', 'onnxruntime', ...)",
    "latency_table_sha1": "content hash of the latency table behind the predicted latency",
    "input_size": "input [H, W] of the latency figures",
    "predicted_latency_ms": "latency predicted by the latency table, ms per image (batch 1)",
    "measured_latency_ms": "measured latency, ms per image (batch 1)",
}

#: What the card says for a field that was not given.
NOT_MEASURED = "not measured"

_STRINGS = ("dataset", "train_device", "device", "latency_backend", "latency_table_sha1")
_MS = ("predicted_latency_ms", "measured_latency_ms")


def check_metadata(metadata: Mapping[str, Any] | None, where: str = "metadata") -> dict[str, Any]:
    """Validates metadata and returns every field of :data:`CARD_FIELDS` (:obj:`None` when not given).

    Args:
        metadata (mapping, optional): Some of the fields of :data:`CARD_FIELDS`.
        where (str, optional): Named in errors (e.g. ``'run/pretrained/config.json: metadata'``).
            (default: ``"metadata"``)

    Returns:
        dict: The fields in :data:`CARD_FIELDS` order, numbers as floats, ``input_size`` as ``[H, W]``.

    Raises:
        ValueError: naming ``where`` and the field, for an unknown field or a bad value.
    """
    metadata = dict(metadata or {})
    if not isinstance(metadata, dict):
        raise ValueError(f"{where}: expected a mapping of fields, got {type(metadata).__name__}")
    unknown = sorted(set(metadata) - set(CARD_FIELDS))
    if unknown:
        raise ValueError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(CARD_FIELDS)})")
    out: dict[str, Any] = dict.fromkeys(CARD_FIELDS)
    for key, v in metadata.items():
        if v is None:
            continue
        name = f"{where}.{key}"
        if key in _STRINGS:
            if not isinstance(v, str) or not v.strip():
                raise ValueError(f"{name}: expected a non-empty string, got {v!r}")
            out[key] = v.strip()
        elif key == "input_size":
            if (not isinstance(v, Sequence) or isinstance(v, str) or len(v) != 2
                    or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v)):
                raise ValueError(f"{name}: expected [H, W] with two positive integers, got {v!r}")
            out[key] = [int(v[0]), int(v[1])]
        else:
            f = _number(v, name)
            if key == "miou" and not 0.0 <= f <= 1.0:
                raise ValueError(f"{name}: {v!r} is not a fraction in [0, 1] (give 0.62 for 62 %)")
            if key in _MS and f <= 0.0:
                raise ValueError(f"{name}: must be a positive number of milliseconds, got {v!r}")
            out[key] = f
    return out


def _number(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise ValueError(f"{name}: expected a finite number, got {v!r}")
    return float(v)


def check_classes(
    num_classes: int, names: Sequence[str] | None = None, palette: Sequence[Sequence[int]] | None = None,
    ignore_index: int | None = None, where: str = "classes",
) -> dict[str, Any]:
    """Validates the class names, palette and ignore index of a network with ``num_classes`` outputs.

    Args:
        num_classes (int): The network's output classes.
        names (sequence of str, optional): One name per class. (default: :obj:`None`)
        palette (sequence of RGB triples, optional): One colour per class. (default: :obj:`None`)
        ignore_index (int, optional): Label of void pixels in the training masks. (default: :obj:`None`)
        where (str, optional): Named in errors. (default: ``"classes"``)

    Returns:
        dict: ``{"names": list | None, "palette": list | None, "ignore_index": int | None}``.

    Raises:
        ValueError: naming ``where`` and the field.
    """
    if names is not None:
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{where}.names: expected a list of strings, got {names!r}")
        names = list(names)
        if len(names) != num_classes:
            raise ValueError(f"{where}.names: {len(names)} names for a network with {num_classes} classes")
    if palette is not None:
        try:
            palette = [[int(c) for c in rgb] for rgb in palette]
        except (TypeError, ValueError):
            raise ValueError(f"{where}.palette: expected a list of [R, G, B] triples") from None
        if len(palette) != num_classes:
            raise ValueError(f"{where}.palette: {len(palette)} colours for a network with {num_classes} classes")
        if any(len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb) for rgb in palette):
            raise ValueError(f"{where}.palette: every colour must be [R, G, B] with values in 0..255")
    if ignore_index is not None:
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise ValueError(f"{where}.ignore_index: expected an integer, got {ignore_index!r}")
        if 0 <= ignore_index < num_classes:
            raise ValueError(f"{where}.ignore_index: {ignore_index} is a class index (0..{num_classes - 1})")
    return {"names": names, "palette": palette, "ignore_index": ignore_index}


def _or_nm(v: Any, fmt: str = "{}") -> str:
    return NOT_MEASURED if v is None else fmt.format(v)


def render_card(
    config: Mapping[str, Any], architecture: str, num_params: int, drawing: str | None, drawing_note: str = "",
) -> str:
    """The model card: a Hub-style ``README.md`` with YAML front matter.

    Args:
        config (mapping): The directory's ``config.json`` (see :mod:`gasgnn.models.pretrained`).
        architecture (str): One line on the cells (count, reductions, ops).
        num_params (int): Parameters of the network.
        drawing (str, optional): File name of the cell drawing beside the card, or :obj:`None`.
        drawing_note (str, optional): Why there is no drawing. (default: ``""``)

    Returns:
        str: Markdown.
    """
    m, cls = config["metadata"], config["classes"]
    space = config["space"]
    tags = ["semantic-segmentation", "neural-architecture-search", "gasgnn", "real-time"]
    front = ["---", "library_name: gasgnn", "pipeline_tag: image-segmentation", "tags:"]
    front += [f"- {t}" for t in tags]
    if m["dataset"]:
        front += ["datasets:", f"- {m['dataset']}"]
    front.append("---")
    head = f"{config['head']} ({config['head_channels']} channels)"
    names = cls["names"]
    classes = f"{config['num_classes']}" + (": " + ", ".join(names) if names else " (names not given)")
    fps = 1000.0 / m["measured_latency_ms"] if m["measured_latency_ms"] else None
    # a latency is for the space's input size unless another one is given
    timed = m["predicted_latency_ms"] is not None or m["measured_latency_ms"] is not None
    size = m["input_size"] or (space.get("input_size") if timed else None)
    lines = [
        *front, "",
        f"# GASNet, {config['head']} head, {config['num_classes']} classes", "",
        "A real-time semantic segmentation network found by graph-guided architecture search (GAS, CVPR "
        "2020) with gasgnn, saved by `GASNet.save_pretrained`.", "",
    ]
    if drawing:
        lines += [f"![The derived cells]({drawing})", ""]
    else:
        lines += [f"*Cell drawing: not included ({drawing_note or 'no drawing function given'}).*", ""]
    lines += [
        "## Network", "",
        "| | |", "|---|---|",
        f"| genotype sha1 | `{config['genotype_sha1']}` |",
        f"| cells | {architecture} |",
        f"| head | {head}; auxiliary head: {'yes' if config['aux'] else 'no'} |",
        f"| classes | {classes} |",
        f"| ignore index | {'not given' if cls['ignore_index'] is None else cls['ignore_index']} |",
        f"| parameters | {num_params / 1e6:.3f} M |",
        f"| weights sha256 | `{config['weights_sha256']}` |",
        "",
        "## Accuracy", "",
        "| | |", "|---|---|",
        f"| dataset | {_or_nm(m['dataset'])} |",
        f"| mIoU | {_or_nm(None if m['miou'] is None else 100 * m['miou'], '{:.2f} %')} |",
        f"| trained on | {_or_nm(m['train_device'])} |",
        "",
        "## Latency", "",
        "| | |", "|---|---|",
        f"| device | {_or_nm(m['device'])} |",
        f"| backend | {_or_nm(m['latency_backend'])} |",
        f"| latency table sha1 | {_or_nm(m['latency_table_sha1'], '`{}`')} |",
        f"| input size | {_or_nm(None if size is None else f'{size[0]}x{size[1]}')} |",
        f"| predicted latency | {_or_nm(m['predicted_latency_ms'], '{:.2f} ms')} |",
        f"| measured latency | {_or_nm(m['measured_latency_ms'], '{:.2f} ms')}"
        + (f" ({fps:.1f} FPS)" if fps else "") + " |",
        "",
        "## Use", "",
        "```python",
        "from gasgnn.models import GASNet",
        "",
        'net = GASNet.from_pretrained("path/to/this/directory")   # or "user/repo" on the Hub',
        "logits = net(images)   # [N, 3, H, W] -> [N, classes, H, W]",
        "```", "",
        "Files: `config.json` (head, classes, metadata), `genotype.json` (the architecture), "
        "`model.safetensors` (weights)" + (f", `{drawing}` (the cells)" if drawing else "") + ".",
        "",
    ]
    return "\n".join(lines)
