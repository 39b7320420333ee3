"""A similarity layer whose attention stays slot-to-slot: :class:`SlotSimilarityConv`."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.typing import Adj, OptTensor, PairTensor
from torch_geometric.utils import scatter

from gasgnn.ggm.errors import GuideError
from gasgnn.ggm.sim_conv import SimilarityGCNConv

__all__ = ["SlotSimilarityConv", "sinkhorn"]

NORMALIZE = ("none", "key", "both")


def _log_normalize(s: Tensor, index: Tensor, num: int) -> Tensor:
    """``s - logsumexp(s)`` over the groups ``index`` (stable; the max is a stop-gradient)."""
    m = scatter(s.detach(), index, dim=0, dim_size=num, reduce="max")[index]
    lse = scatter((s - m).exp(), index, dim=0, dim_size=num, reduce="sum").log()[index] + m
    return s - lse


def sinkhorn(scores: Tensor, edge_index: Tensor, size: tuple[int, int], iters: int) -> Tensor:
    r"""Edge weights from scores by Sinkhorn balancing on an edge list.

    ``iters`` rounds each normalise the weights over every source's outgoing edges, then over every
    target's incoming edges (in log space); the last step is always the targets', so every target's
    weights sum to 1 (a softmax when ``iters == 0``). On a complete bipartite block of equal sides (the
    ``'adjacent'`` relation: the E slots of cell k-1 to the E slots of cell k) the result tends to a
    doubly stochastic matrix: every source carries the same total weight, so no source can be every
    target's choice.

    Args:
        scores (Tensor): ``[edges]`` scores.
        edge_index (Tensor): ``[2, edges]``, row 0 the sources.
        size (tuple): ``(num_sources, num_targets)``.
        iters (int): Sinkhorn rounds (``>= 0``).

    Returns:
        Tensor: ``[edges]`` weights.
    """
    src, dst = edge_index
    s = scores
    for _ in range(iters):
        s = _log_normalize(s, src, size[0])
        s = _log_normalize(s, dst, size[1])
    if iters == 0:
        s = _log_normalize(s, dst, size[1])
    return s.exp()


class SlotSimilarityConv(SimilarityGCNConv):
    r""":class:`SimilarityGCNConv` with three guards against a hub (one source that every target attends
    to): a normalised key, Sinkhorn-balanced attention and a slot-identity prior.

    .. math::
        e_{ij} = \frac{\phi(\mathbf{s}_i)^{\top} \hat\phi'(\mathbf{s}_j)}{t} + B_{p_i p_j},
        \qquad A = \mathrm{Sinkhorn}_n(e), \qquad
        \mathbf{x}'_i = \sum_{j \in \mathcal{N}(i)} A_{ij}\, \mathbf{x}_j \mathbf{W}

    - ``normalize='key'``: :math:`\hat\phi'` is :math:`\phi'` scaled to unit length, so no source wins
      every target by the norm of its key alone (``'both'`` also normalises the query: a cosine score).
    - ``sinkhorn_iters = n > 0``: the weights are balanced over sources as well as targets
      (:func:`sinkhorn`), a load balance by construction; ``0`` is the row softmax of
      :class:`SimilarityGCNConv`.
    - ``num_positions = P > 0``: a learnable bias :math:`B \in \mathbb{R}^{P \times P}` between node
      positions ``pos`` (the guide passes each op slot's index within its cell), initialised at
      ``position_prior * I``: slot i of cell k starts attending to slot i of cell k-1 and leaves it when
      the similarity says so.

    With ``normalize='none'``, ``sinkhorn_iters=0`` and no positions it is :class:`SimilarityGCNConv`.

    Args:
        in_channels (int or tuple): Size of each input sample, or ``(source, target)`` sizes.
        out_channels (int): Size of each output sample.
        hidden_channels (int, optional): Size of the similarity embeddings. (default: :obj:`16`)
        sim_channels (int or tuple, optional): Size of ``sim_x`` when it differs from ``x``.
            (default: :obj:`None`)
        temperature (float, optional): Divides the similarity score. (default: :obj:`1.0`)
        normalize (str, optional): ``'none'``, ``'key'`` or ``'both'``. (default: :obj:`"key"`)
        sinkhorn_iters (int, optional): Sinkhorn rounds; 0 is a softmax over each target's sources.
            (default: :obj:`3`)
        num_positions (int, optional): Node positions of the bias table; 0 for none. (default: :obj:`0`)
        position_prior (float, optional): Initial diagonal of the bias table. (default: :obj:`2.0`)
        **kwargs (optional): Additional arguments of :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** as :class:`SimilarityGCNConv`, plus positions ``pos`` :math:`(|\mathcal{V}|)` (long)
          when ``num_positions > 0``
        - **output:** as :class:`SimilarityGCNConv`
    """

    def __init__(
        self, in_channels: int | tuple[int, int], out_channels: int, hidden_channels: int = 16,
        sim_channels: int | tuple[int, int] | None = None, temperature: float = 1.0, normalize: str = "key",
        sinkhorn_iters: int = 3, num_positions: int = 0, position_prior: float = 2.0, **kwargs: Any,
    ) -> None:
        if normalize not in NORMALIZE:
            raise GuideError(f"SlotSimilarityConv.normalize: one of {list(NORMALIZE)}, got {normalize!r}")
        if not isinstance(sinkhorn_iters, int) or sinkhorn_iters < 0:
            raise GuideError(f"SlotSimilarityConv.sinkhorn_iters: an integer >= 0, got {sinkhorn_iters!r}")
        if not isinstance(num_positions, int) or num_positions < 0:
            raise GuideError(f"SlotSimilarityConv.num_positions: an integer >= 0, got {num_positions!r}")
        self.normalize = normalize
        self.sinkhorn_iters = sinkhorn_iters
        self.num_positions = num_positions
        self.position_prior = float(position_prior)
        super().__init__(in_channels, out_channels, hidden_channels=hidden_channels, sim_channels=sim_channels,
                         temperature=temperature, **kwargs)
        self.pos_bias = nn.Parameter(torch.empty(num_positions, num_positions)) if num_positions else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if getattr(self, "pos_bias", None) is not None:
            with torch.no_grad():
                self.pos_bias.copy_(self.position_prior * torch.eye(self.num_positions))

    def forward(
        self, x: Tensor | PairTensor, edge_index: Adj, return_attention_weights: bool = False,
        sim_x: Tensor | PairTensor | None = None, pos: OptTensor = None,
    ) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
        """Runs the layer.

        Args:
            x (Tensor or (Tensor, Tensor)): Node features, or ``(source, target)`` features.
            edge_index (Tensor): ``[2, E]``, ``edge_index[0]`` the sources.
            return_attention_weights (bool, optional): Also return ``(edge_index, A)``. (default: :obj:`False`)
            sim_x (Tensor or (Tensor, Tensor), optional): Features of the similarity; :obj:`None` uses
                ``x``. (default: :obj:`None`)
            pos (Tensor, optional): ``[N]`` node positions in ``[0, num_positions)``; needed when
                ``num_positions > 0`` (and then the graph may not be bipartite). (default: :obj:`None`)

        Returns:
            Tensor: the output features (and ``(edge_index, A)`` with ``return_attention_weights``).
        """
        x_src, x_dst = (x, x) if isinstance(x, Tensor) else x
        s_src, s_dst = (x_src, x_dst) if sim_x is None else ((sim_x, sim_x) if isinstance(sim_x, Tensor) else sim_x)
        q = self.phi(s_dst) / self.temperature
        k = self.phi_prime(s_src)
        if self.normalize in ("key", "both"):
            k = F.normalize(k, dim=-1)
        if self.normalize == "both":
            q = F.normalize(q, dim=-1) / self.temperature
        src, dst = edge_index
        scores = (q[dst] * k[src]).sum(dim=-1)
        if self.pos_bias is not None:
            if pos is None:
                raise GuideError("SlotSimilarityConv: num_positions > 0 needs the node positions pos")
            scores = scores + self.pos_bias[pos[dst], pos[src]]
        att = sinkhorn(scores, edge_index, (x_src.size(0), x_dst.size(0)), self.sinkhorn_iters)
        out = self.propagate(edge_index, v=(self.lin(x_src), None), att=att, size=(x_src.size(0), x_dst.size(0)))
        self.last_attention = (edge_index, att.detach())
        if return_attention_weights:
            return out, (edge_index, att)
        return out

    def message(self, v_j: Tensor, att: Tensor) -> Tensor:  # type: ignore[override]
        return v_j * att.unsqueeze(-1)

    def __repr__(self) -> str:
        pos = f", num_positions={self.num_positions}" if self.num_positions else ""
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, normalize={self.normalize!r}, "
                f"sinkhorn_iters={self.sinkhorn_iters}{pos})")
