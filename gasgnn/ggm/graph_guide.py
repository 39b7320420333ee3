"""The graph-guided module: :class:`GraphGuidedModule`, ``alpha' = alpha + gamma * GNN(alpha)`` over the
ArchGraph with any message-passing layer, and the slot attributes its similarity reads."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.resolver import activation_resolver
from torch_geometric.utils import scatter

from gasgnn.ggm.base import Guide
from gasgnn.ggm.convs import build_conv, conv_name, conv_output, uses_similarity
from gasgnn.ggm.errors import GuideError
from gasgnn.space import BUILDERS, SearchSpace, build_edge_index

__all__ = ["CELL_BUILDER", "GraphGuidedModule", "SIM_INPUTS", "slot_attributes"]

#: The cell-level relation of :class:`GraphGuidedModule`: one node per cell, edges ``k-1 -> k``.
CELL_BUILDER = "cells"

#: What feeds the similarity of a similarity conv (see :meth:`GraphGuidedModule.similarity_features`).
SIM_INPUTS = ("cell_norm", "log_softmax", "raw")


def slot_attributes(space: SearchSpace) -> Tensor:
    """Fixed features of every op slot ``[num_cells * E, (M + 1) + M + 2]``: one-hot source node,
    one-hot destination node, stride 2, reduction cell (from :meth:`SearchSpace.arch_graph`)."""
    g = space.arch_graph(torch.zeros(space.num_arch_nodes, space.num_ops))
    m = space.num_nodes
    src = torch.nn.functional.one_hot(g.src, m + 1)
    dst = torch.nn.functional.one_hot(g.dst - 2, m)
    return torch.cat([src, dst, (g.stride == 2).unsqueeze(1), g.reduction.unsqueeze(1)], dim=1).float()


def balance_penalty(edge_index: Tensor, att: Tensor, nodes_per_cell: int, num_nodes: int) -> Tensor:
    """Load-balancing loss of one attention layer: the mean squared relative deviation of every source's
    load (its total outgoing weight) from the mean load of its cell's sources. 0 when every source of a
    cell carries the same weight; ``E - 1`` for a hub on the ``'adjacent'`` relation."""
    att = att.reshape(att.size(0), -1).mean(dim=1)
    src = edge_index[0]
    load = scatter(att, src, dim=0, dim_size=num_nodes, reduce="sum")
    senders = torch.unique(src)
    cells = senders // nodes_per_cell
    mean = scatter(load[senders], cells, dim=0, reduce="mean")[cells]
    return ((load[senders] / mean.clamp_min(1e-12) - 1) ** 2).mean()


def row_entropy(edge_index: Tensor, att: Tensor, num_nodes: int) -> Tensor:
    """Mean normalised entropy of the attention rows with at least two edges (differentiable)."""
    att = att.reshape(att.size(0), -1).mean(dim=1)
    dst = edge_index[1]
    ent = scatter(-att * att.clamp_min(1e-30).log(), dst, dim=0, dim_size=num_nodes, reduce="sum")
    deg = scatter(torch.ones_like(att), dst, dim=0, dim_size=num_nodes, reduce="sum")
    rows = deg >= 2
    return (ent[rows] / deg[rows].log()).mean()


class GraphGuidedModule(Guide):
    r"""The graph-guided module: a GNN over the ArchGraph refines alpha.

    .. math::
        \alpha' = \alpha + \gamma \, \mathrm{GNN}(\alpha)

    where the GNN is ``num_layers`` message-passing layers (``K -> hidden -> ... -> K``, with ``act``
    between them) over the relation made by ``builder``. With ``conv='gcn_sim'``, ``builder='adjacent'``
    and one layer this is the GAS update
    :math:`\alpha'_k = \alpha_k + \gamma\, \mathrm{softmax}_j(\phi(\alpha_{k,i}) \cdot
    \phi'(\alpha_{k-1,j}))\, \alpha_{k-1} W`.

    A conv that declares ``similarity_features = True`` (:func:`~gasgnn.ggm.uses_similarity`) gets the
    similarity features ``sim_x`` (:meth:`similarity_features`); one with ``num_positions > 0`` also
    gets each node's slot index within its cell as ``pos``.

    Args:
        space (SearchSpace): The search space (fixes K, the cells and the relation).
        conv (str, type or MessagePassing, optional): The layer: a name in
            :data:`~gasgnn.ggm.convs.CONVS` (``'gcn_sim'``, ``'slot_sim'``, ``'gcn'``, ``'gat'``, ``'gatv2'``,
            ``'sage'``, ``'gin'``, ``'transformer'``), ``'package.module:ClassName'``, a
            :class:`MessagePassing` class (built as ``cls(in_channels, out_channels, **conv_kwargs)``) or
            an instance (then ``num_layers`` must be 1). (default: :obj:`"gcn_sim"`)
        builder (str, optional): The relation the GNN runs on: a name in
            :data:`gasgnn.space.builders.BUILDERS` (``'adjacent'``, ``'aligned'``, ``'all_previous'``, ...),
            ``'cells'`` (one node per cell with its flattened ``E*K`` alpha, edges ``k-1 -> k``), or
            :obj:`None` to use ``graph.edge_index`` as handed to :meth:`forward`.
            (default: :obj:`"adjacent"`)
        gamma (float, optional): Scale of the guidance. (default: :obj:`0.5`)
        num_layers (int, optional): Message-passing layers. (default: :obj:`1`)
        hidden_channels (int, optional): Width between layers, and the inner width of convs that
            have one (the similarity embeddings, GIN's MLP). (default: :obj:`16`)
        learn_gamma (bool, optional): Make gamma learnable. (default: :obj:`False`)
        act (str, optional): Nonlinearity between layers. (default: :obj:`"relu"`)
        builder_kwargs (dict, optional): Passed to the builder. (default: :obj:`None`)
        sim_input (str, optional): What the similarity reads of alpha (similarity convs only):
            ``'cell_norm'``, ``'log_softmax'`` or ``'raw'``. (default: :obj:`"cell_norm"`)
        slot_features (bool, optional): Append the slot attributes to the similarity features
            (similarity convs only). (default: :obj:`True`)
        bounded (bool, optional): Bound the update below ``gamma * ||alpha||`` (:class:`Guide`).
            (default: :obj:`False`)
        balance_weight (float, optional): Weight of the load-balancing term of :meth:`regularizer`.
            (default: :obj:`0.0`)
        entropy_weight (float, optional): Weight of the attention-entropy bonus of :meth:`regularizer`
            (``-weight * mean row entropy``). (default: :obj:`0.0`)
        value_decay (float, optional): L2 weight on the value maps ``W`` (the convs' ``lin``) in
            :meth:`regularizer`: weight decay on W only. (default: :obj:`0.0`)
        **conv_kwargs (optional): Passed to every conv (e.g. ``heads=2`` for GAT).

    Shapes:
        - **input:** alpha :math:`(L \cdot E, K)`, ArchGraph ``Data`` (optional unless ``builder=None``)
        - **output:** alpha' :math:`(L \cdot E, K)`
    """

    def __init__(
        self,
        space: SearchSpace,
        conv: Any = "gcn_sim",
        builder: str | None = "adjacent",
        gamma: float = 0.5,
        num_layers: int = 1,
        hidden_channels: int = 16,
        learn_gamma: bool = False,
        act: str = "relu",
        builder_kwargs: dict[str, Any] | None = None,
        sim_input: str = "cell_norm",
        slot_features: bool = True,
        bounded: bool = False,
        balance_weight: float = 0.0,
        entropy_weight: float = 0.0,
        value_decay: float = 0.0,
        **conv_kwargs: Any,
    ) -> None:
        super().__init__(space, gamma=gamma, learn_gamma=learn_gamma, bounded=bounded)
        if sim_input not in SIM_INPUTS:
            raise GuideError(f"GraphGuidedModule.sim_input: one of {list(SIM_INPUTS)}, got {sim_input!r}")
        if not isinstance(num_layers, int) or num_layers < 1:
            raise GuideError(f"GraphGuidedModule.num_layers: must be a positive integer, got {num_layers!r}")
        if builder is not None and builder != CELL_BUILDER and builder not in BUILDERS:
            raise GuideError(
                f"GraphGuidedModule.builder: unknown '{builder}'; registered: "
                f"{sorted(BUILDERS) + [CELL_BUILDER]} or None (use graph.edge_index)"
            )
        if builder_kwargs and (builder is None or builder == CELL_BUILDER):
            raise GuideError(f"GraphGuidedModule.builder_kwargs: builder {builder!r} takes no options")
        if isinstance(conv, MessagePassing) and num_layers > 1:
            raise GuideError(
                "GraphGuidedModule: a conv instance gives one layer; pass its class for num_layers > 1"
            )
        for key, v in (("balance_weight", balance_weight), ("entropy_weight", entropy_weight),
                       ("value_decay", value_decay)):
            if not v >= 0:
                raise GuideError(f"GraphGuidedModule.{key}: must be >= 0, got {v!r}")
        self.conv_spec = conv_name(conv)
        self.builder = builder
        self.num_layers = num_layers
        self.hidden_channels = hidden_channels
        E, K, L = space.edges_per_cell, space.num_ops, space.num_cells
        # In cell mode every node is a whole cell: its E rows of alpha, flattened.
        self.feat_channels = E * K if builder == CELL_BUILDER else K
        dims = [self.feat_channels] + [hidden_channels] * (num_layers - 1) + [self.feat_channels]
        # Similarity features (for convs that declare them): a scale-free view of alpha plus the fixed
        # slot attributes, the same for every layer. Why: raw alpha at its 1e-3 initial scale gives scores
        # of ~1e-6, i.e. uniform attention that weight decay keeps uniform (docs/ggm.md, "Making the
        # similarity learn").
        self.sim_input = sim_input
        is_sim = uses_similarity(conv)
        self.slot_features = bool(slot_features) and is_sim and builder != CELL_BUILDER
        slot = slot_attributes(space) if self.slot_features else torch.zeros(space.num_arch_nodes, 0)
        self.register_buffer("slot_attr", slot, persistent=False)
        self.uses_sim_x = is_sim and (sim_input != "raw" or self.slot_features)
        if self.uses_sim_x:
            conv_kwargs = {"sim_channels": self.feat_channels + slot.size(1), **conv_kwargs}
        self.convs = nn.ModuleList(
            build_conv(conv, dims[i], dims[i + 1], hidden_channels, **conv_kwargs) for i in range(num_layers)
        )
        self.act = activation_resolver(act) if num_layers > 1 else None
        # Slot positions (each node's index within its cell) for convs with a position bias.
        self.uses_pos = any(getattr(c, "num_positions", 0) for c in self.convs)
        n_nodes = L if builder == CELL_BUILDER else space.num_arch_nodes
        pos = torch.arange(n_nodes) % (1 if builder == CELL_BUILDER else E)
        if self.uses_pos and any(0 < getattr(c, "num_positions", 0) <= int(pos.max()) for c in self.convs):
            raise GuideError(f"GraphGuidedModule: the conv's num_positions must be at least {int(pos.max()) + 1} "
                             f"(the op slots of a cell) for builder {builder!r}")
        self.register_buffer("pos", pos, persistent=False)
        self.balance_weight, self.entropy_weight = float(balance_weight), float(entropy_weight)
        self.value_decay = float(value_decay)
        if self.value_decay and not all(isinstance(getattr(c, "lin", None), nn.Linear) for c in self.convs):
            raise GuideError(f"GraphGuidedModule.value_decay: conv '{self.conv_spec}' has no value map 'lin'")
        if self.has_attention_terms and not all(
                "return_attention_weights" in inspect.signature(c.forward).parameters for c in self.convs):
            raise GuideError(f"GraphGuidedModule: balance_weight/entropy_weight need a conv that returns its "
                             f"attention (return_attention_weights=True); '{self.conv_spec}' does not")
        self._reg: Tensor | None = None
        # The relation depends only on the space, so it is built once; a non-persistent buffer follows
        # .to(device) without entering checkpoints.
        if builder == CELL_BUILDER:
            ar = torch.arange(L - 1)
            ei = torch.stack([ar, ar + 1])
        elif builder is not None:
            ei = build_edge_index(builder, space, **(builder_kwargs or {}))
        else:
            ei = torch.empty(2, 0, dtype=torch.long)
        self.register_buffer("edge_index", ei, persistent=False)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for conv in self.convs:
            if hasattr(conv, "reset_parameters"):
                conv.reset_parameters()

    @property
    def has_attention_terms(self) -> bool:
        """Whether :meth:`regularizer` needs the attention (a balance or entropy weight)."""
        return bool(self.balance_weight or self.entropy_weight)

    def guidance(self, alpha: Tensor, graph: Data | None) -> Tensor:
        if self.builder is None:
            if graph is None or getattr(graph, "edge_index", None) is None:
                raise GuideError("GraphGuidedModule(builder=None): forward needs a graph with an edge_index")
            edge_index = graph.edge_index.to(alpha.device)
        else:
            edge_index = self.edge_index
        n = self.space.num_cells if self.builder == CELL_BUILDER else alpha.size(0)
        h = alpha.reshape(n, self.feat_channels)
        sim_x = self.similarity_features(alpha) if self.uses_sim_x else None
        reg: list[Tensor] = []
        for i, conv in enumerate(self.convs):
            kw: dict[str, Any] = {}
            if sim_x is not None:
                kw["sim_x"] = sim_x
            if getattr(conv, "num_positions", 0):
                kw["pos"] = self.pos
            if self.has_attention_terms:
                h, (ei, att) = conv(h, edge_index, return_attention_weights=True, **kw)
                reg.append(self._attention_terms(ei, att, n))
            elif kw:
                h = conv(h, edge_index, **kw)
            else:
                h = conv_output(conv, h, edge_index)
            if i < self.num_layers - 1:
                h = self.act(h)
        if self.value_decay:
            reg.append(self.value_decay * sum(c.lin.weight.pow(2).sum() for c in self.convs))
        self._reg = torch.stack(reg).sum() if reg else None
        if tuple(h.shape) != (n, self.feat_channels):
            raise GuideError(
                f"GraphGuidedModule: conv '{self.conv_spec}' returned shape {tuple(h.shape)}, expected "
                f"{[n, self.feat_channels]} (a conv must map in_channels to out_channels features)"
            )
        return h.reshape_as(alpha)

    def _attention_terms(self, edge_index: Tensor, att: Tensor, n: int) -> Tensor:
        per_cell = 1 if self.builder == CELL_BUILDER else self.space.edges_per_cell
        terms = att.new_zeros(())
        if self.balance_weight:
            terms = terms + self.balance_weight * balance_penalty(edge_index, att, per_cell, n)
        if self.entropy_weight:
            terms = terms - self.entropy_weight * row_entropy(edge_index, att, n)
        return terms

    def regularizer(self) -> Tensor | None:
        """The auxiliary loss of the last forward: ``balance_weight`` times the load-balancing penalty
        (:func:`balance_penalty`), minus ``entropy_weight`` times the mean attention entropy, plus
        ``value_decay`` times ``||W||^2``, summed over layers; :obj:`None` when all three weights are 0."""
        return self._reg

    def similarity_features(self, alpha: Tensor) -> Tensor:
        r"""The input of :math:`\phi, \phi'`: alpha as :attr:`sim_input` says, then the slot attributes.

        ``'cell_norm'`` standardises each cell's ``E*K`` block of alpha (zero mean, unit variance), so
        the score sees the *pattern* of a cell's preferences whatever alpha's scale. It is a constant for
        autograd (stop-gradient): the gradient reaching alpha through a standardisation scales as
        1/std(alpha), about 1e3 at initialisation, and Adam would follow it instead of the search loss;
        phi and phi' still learn, and alpha still gets the gradient of the messages ``A alpha W``.
        ``'log_softmax'`` uses log-softmax of each row, ``'raw'`` alpha itself (both differentiable).

        Args:
            alpha (Tensor): ``[num_cells * E, K]``.

        Returns:
            Tensor: ``[nodes, F + A]`` with ``A`` the slot attributes (0 without them).
        """
        L = self.space.num_cells
        if self.sim_input == "cell_norm":
            cells = alpha.detach().reshape(L, -1)
            std, mean = torch.std_mean(cells, dim=1, keepdim=True)
            s = ((cells - mean) / (std + 1e-12)).reshape(-1, self.feat_channels)
        elif self.sim_input == "log_softmax":
            s = torch.log_softmax(alpha, dim=-1).reshape(-1, self.feat_channels)
        else:
            s = alpha.reshape(-1, self.feat_channels)
        if self.slot_attr.size(1):
            s = torch.cat([s, self.slot_attr.to(s.dtype)], dim=-1)
        return s

    def attention(self) -> list[tuple[Tensor, Tensor]]:
        """``(edge_index, A)`` of every attention layer in the last forward (empty without attention)."""
        return [c.last_attention for c in self.convs if getattr(c, "last_attention", None) is not None]

    def extra_repr(self) -> str:
        sim = f", sim_input={self.sim_input!r}, slot_features={self.slot_features}" if self.uses_sim_x else ""
        reg = "".join(f", {k}={getattr(self, k)}" for k in ("balance_weight", "entropy_weight", "value_decay")
                      if getattr(self, k))
        return (
            f"conv={self.conv_spec!r}, builder={self.builder!r}, num_layers={self.num_layers}{sim}{reg}, "
            f"{super().extra_repr()}"
        )
