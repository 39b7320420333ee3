"""The drawings' shared style: op colours and labels, figure creation and atomic saving."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gasgnn.space import OPS
from gasgnn.utils import atomic_write_bytes

__all__ = [
    "DRAWING_GID", "FORMATS", "LARGE_RF_COLOR", "LIGHT_COLOR", "NODE_COLORS", "OTHER_COLOR", "REDUCTION_COLOR",
    "finish_figure", "new_figure", "op_style", "save_figure", "short_label",
]

LIGHT_COLOR = "#555555"
LARGE_RF_COLOR = "#1a9850"
OTHER_COLOR = "#1f1f1f"
REDUCTION_COLOR = "#e66101"
NODE_COLORS = {"input": "#a6cee3", "inter": "#ffe9a8", "output": "#d9d9d9"}
FORMATS = (".png", ".svg", ".pdf")
DRAWING_GID = "gasgnn-drawing"  # figures made of flat colours, safe to store with a palette

def short_label(op: str) -> str:
    """The short arrow label of an op, from its registration (``sep_conv_3x3`` -> ``sep3``, see
    :func:`gasgnn.space.register_op`'s ``label``); ops without a label, or unregistered, keep their name."""
    spec = OPS.get(op, None)
    return spec.short_label if spec is not None else op


def op_style(op: str) -> dict[str, Any]:
    """Arrow style of an op from the registry: dashed when light-weight, green for a large receptive field."""
    spec = OPS.get(op, None)
    if spec is not None and spec.large_rf:
        return {"color": LARGE_RF_COLOR, "linestyle": "-", "lw": 1.6}
    if spec is not None and spec.light:
        return {"color": LIGHT_COLOR, "linestyle": (0, (3.5, 2.0)), "lw": 1.3}
    return {"color": OTHER_COLOR, "linestyle": "-", "lw": 1.3}


def new_figure(w: float, h: float) -> Figure:
    """A ``w`` x ``h`` inch figure on an Agg canvas (no pyplot state)."""
    fig = Figure(figsize=(w, h))
    FigureCanvasAgg(fig)
    return fig


def save_figure(
    fig: Figure, path: str | os.PathLike, dpi: float | None = None, quantize: bool | None = None,
) -> Path:
    """Saves ``fig`` as PNG, SVG or PDF (by the suffix), atomically (temporary file, then rename).

    Args:
        fig (Figure): The figure.
        path (str or PathLike): Destination ending in ``.png``, ``.svg`` or ``.pdf``.
        dpi (float, optional): Resolution for PNG; :obj:`None` keeps the figure's. (default: :obj:`None`)
        quantize (bool, optional): Store the PNG with a 256-colour palette (line drawings look the same
            and the file is about three times smaller; colour maps would band). :obj:`None` does it for
            network and cell drawings only. (default: :obj:`None`)

    Returns:
        Path: the destination.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unsupported figure format '{suffix}' (use one of {', '.join(FORMATS)})")
    buf = io.BytesIO()
    fig.savefig(buf, format=suffix[1:], dpi=dpi or fig.dpi, facecolor="white")
    data = buf.getvalue()
    if quantize is None:
        quantize = fig.get_gid() == DRAWING_GID
    if suffix == ".png" and quantize:
        from PIL import Image

        img = Image.open(io.BytesIO(data))
        out = io.BytesIO()
        img.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(
            out, format="PNG", optimize=True, dpi=img.info.get("dpi", (fig.dpi, fig.dpi)))
        data = out.getvalue()
    return atomic_write_bytes(path, data)


def finish_figure(fig: Figure, path: str | os.PathLike | None, dpi: float | None) -> Figure:
    """Saves ``fig`` to ``path`` when one is given (:func:`save_figure`) and returns it."""
    if path is not None:
        save_figure(fig, path, dpi)
    return fig
