"""The training curves written beside a training run's metrics (``curves.png``)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["plot_curves"]


def plot_curves(history: Sequence[dict[str, Any]]) -> bytes:
    """PNG bytes of the training curves (loss; validation mIoU and pixel accuracy), matplotlib Agg."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    ep = [r["epoch"] for r in history]
    fig = Figure(figsize=(9, 3.5))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(ep, [r["train_loss"] for r in history], marker=".")
    ax1.set(xlabel="epoch", ylabel="train loss", title="training loss")
    val = [(e, r["val_miou"], r["val_pixel_acc"]) for e, r in zip(ep, history)
           if not math.isnan(r["val_miou"])]
    if val:
        ax2.plot([v[0] for v in val], [100 * v[1] for v in val], marker=".", label="mIoU")
        ax2.plot([v[0] for v in val], [100 * v[2] for v in val], marker=".", label="pixel acc.")
        ax2.legend()
    ax2.set(xlabel="epoch", ylabel="%", title="validation")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()
