"""What a guide did to alpha, for the search's per-epoch log: attention entropy and the update ratio."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

__all__ = ["attention_entropy", "guide_diagnostics"]


def attention_entropy(attention: list[tuple[Tensor, Tensor]], num_nodes: int) -> float:
    """Mean normalised entropy of the attention rows: 1 is uniform, 0 one-hot.

    A row is the weights :math:`A_{i\\cdot}` of one target node over its incoming edges; its entropy is
    divided by ``log(in-degree)``. Nodes with fewer than two incoming edges have no choice and are left
    out.

    Args:
        attention (list): ``(edge_index, A)`` per attention layer (e.g. ``guide.attention()``).
        num_nodes (int): Nodes of the graph.

    Returns:
        float: the mean over rows and layers, NaN when there is no row.
    """
    values = []
    for edge_index, att in attention:
        att = att.detach().float().reshape(att.size(0), -1).mean(dim=1)  # heads: average
        dst = edge_index[1].to(att.device)
        ent = scatter(-att * att.clamp_min(1e-30).log(), dst, dim=0, dim_size=num_nodes, reduce="sum")
        deg = scatter(torch.ones_like(att), dst, dim=0, dim_size=num_nodes, reduce="sum")
        rows = deg >= 2
        if rows.any():
            values.append(ent[rows] / deg[rows].log())
    return float(torch.cat(values).mean()) if values else float("nan")


@torch.no_grad()
def guide_diagnostics(guide: nn.Module, alpha: Tensor, alpha_p: Tensor) -> dict[str, float]:
    """``guide_attention_entropy`` (after the guide's last forward; NaN for guides without attention) and
    ``guide_update_ratio`` = ``||alpha' - alpha|| / ||alpha||``.

    Args:
        guide (nn.Module): The guide that computed ``alpha_p`` from ``alpha`` last.
        alpha (Tensor): alpha.
        alpha_p (Tensor): alpha'.
    """
    att = guide.attention() if hasattr(guide, "attention") else []
    ent = attention_entropy(att, alpha.size(0)) if att else float("nan")
    a = alpha.detach().float()
    ratio = float((alpha_p.detach().float() - a).norm() / a.norm().clamp_min(1e-30))
    return {"guide_attention_entropy": ent, "guide_update_ratio": ratio}
