"""The GAS graph-guided layer: :class:`SimilarityGCNConv`."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.typing import Adj, OptTensor, PairTensor
from torch_geometric.utils import softmax

from gasgnn.ggm.errors import GuideError

__all__ = ["SimilarityGCNConv"]


class SimilarityGCNConv(MessagePassing):
    r"""The GAS graph-guided layer: messages weighted by a learned, softmax-normalised similarity.

    For every target node :math:`i` the weights of its incoming nodes :math:`j \in \mathcal{N}(i)` are a
    softmax over the dot products of two learned embeddings, and the output is the weighted sum of the
    transformed sources:

    .. math::
        A_{ij} = \frac{\exp\left(\phi(\mathbf{s}_i)^{\top} \phi'(\mathbf{s}_j) / t\right)}
        {\sum_{k \in \mathcal{N}(i)} \exp\left(\phi(\mathbf{s}_i)^{\top} \phi'(\mathbf{s}_k) / t\right)},
        \qquad
        \mathbf{x}'_i = \sum_{j \in \mathcal{N}(i)} A_{ij}\, \mathbf{x}_j \mathbf{W}

    with :math:`\phi, \phi'` linear maps to ``hidden_channels``, :math:`\mathbf{W}` a linear map to
    ``out_channels`` and :math:`t` the ``temperature``. The similarity features :math:`\mathbf{s}` are
    ``x`` itself unless ``sim_x`` is given: the GGM passes a scale-free view of alpha plus the fixed slot
    attributes there (``docs/ggm.md``), because raw alpha at its 1e-3 initial scale makes every score
    ~1e-6 and the attention uniform. There is no bias and no self-loop, so a node without incoming edges
    (every op slot of the first cell in the ArchGraph) gets an exactly zero output.

    Args:
        in_channels (int or tuple): Size of each input sample, or ``(source, target)`` sizes for a
            bipartite graph.
        out_channels (int): Size of each output sample.
        hidden_channels (int, optional): Size of the similarity embeddings :math:`\phi, \phi'`.
            (default: :obj:`16`)
        sim_channels (int or tuple, optional): Size of the similarity features ``sim_x`` when they differ
            from ``x``; :obj:`None` uses ``in_channels``. (default: :obj:`None`)
        temperature (float, optional): Divides the score. (default: :obj:`1.0`)
        **kwargs (optional): Additional arguments of :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})` or
          :math:`((|\mathcal{V_s}|, F_{s}), (|\mathcal{V_t}|, F_{t}))` if bipartite,
          edge indices :math:`(2, |\mathcal{E}|)`, optional similarity features
          :math:`(|\mathcal{V}|, F_{sim})`
        - **output:** node features :math:`(|\mathcal{V}|, F_{out})` or :math:`(|\mathcal{V}_t|, F_{out})`
          if bipartite; with ``return_attention_weights=True`` also
          :math:`((2, |\mathcal{E}|), (|\mathcal{E}|))`
    """

    #: Takes the guide's similarity features: built with ``sim_channels``, called with ``sim_x``
    #: (:func:`gasgnn.ggm.uses_similarity`; any conv class can declare it).
    similarity_features = True

    def __init__(
        self, in_channels: int | tuple[int, int], out_channels: int, hidden_channels: int = 16,
        sim_channels: int | tuple[int, int] | None = None, temperature: float = 1.0, **kwargs: Any
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(node_dim=0, **kwargs)
        if temperature <= 0:
            raise GuideError(f"SimilarityGCNConv.temperature: must be > 0, got {temperature}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.sim_channels = sim_channels
        self.temperature = float(temperature)
        src, dst = (in_channels, in_channels) if isinstance(in_channels, int) else in_channels
        if sim_channels is not None:
            s_src, s_dst = (sim_channels, sim_channels) if isinstance(sim_channels, int) else sim_channels
        else:
            s_src, s_dst = src, dst
        self.phi = nn.Linear(s_dst, hidden_channels, bias=False)  # query: the target i
        self.phi_prime = nn.Linear(s_src, hidden_channels, bias=False)  # key: the source j
        self.lin = nn.Linear(src, out_channels, bias=False)  # W, applied before propagation (cheaper)
        self._attention: Tensor | None = None
        #: The attention of the last forward (detached): the search logs its entropy.
        self.last_attention: tuple[Tensor, Tensor] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.phi.reset_parameters()
        self.phi_prime.reset_parameters()
        self.lin.reset_parameters()

    def forward(
        self, x: Tensor | PairTensor, edge_index: Adj, return_attention_weights: bool = False,
        sim_x: Tensor | PairTensor | None = None,
    ) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
        """Runs the layer.

        Args:
            x (Tensor or (Tensor, Tensor)): Node features, or ``(source, target)`` features.
            edge_index (Tensor): ``[2, E]``, ``edge_index[0]`` the sources.
            return_attention_weights (bool, optional): Also return ``(edge_index, A)`` with ``A`` the
                per-edge weights :math:`A_{ij}`. (default: :obj:`False`)
            sim_x (Tensor or (Tensor, Tensor), optional): Features of the similarity; :obj:`None` uses
                ``x``. (default: :obj:`None`)

        Returns:
            Tensor: the output features (and ``(edge_index, A)`` with ``return_attention_weights``).
        """
        x_src, x_dst = (x, x) if isinstance(x, Tensor) else x
        if sim_x is None:
            s_src, s_dst = x_src, x_dst
        else:
            s_src, s_dst = (sim_x, sim_x) if isinstance(sim_x, Tensor) else sim_x
        out = self.propagate(
            edge_index,
            q=(None, self.phi(s_dst) / self.temperature),
            k=(self.phi_prime(s_src), None),
            v=(self.lin(x_src), None),
            size=(x_src.size(0), x_dst.size(0)),
        )
        att, self._attention = self._attention, None
        self.last_attention = (edge_index, att.detach()) if att is not None else None
        if return_attention_weights:
            return out, (edge_index, att)
        return out

    def message(self, q_i: Tensor, k_j: Tensor, v_j: Tensor, index: Tensor, ptr: OptTensor,
                size_i: int | None) -> Tensor:
        att = softmax((q_i * k_j).sum(dim=-1), index, ptr, size_i)
        self._attention = att
        return v_j * att.unsqueeze(-1)
