"""Graph-guided modules (GGM): map the architecture parameters alpha to alpha' over the ArchGraph.

Every guide is an :class:`torch.nn.Module` built as ``Guide(space, **kwargs)`` with the one contract
``forward(alpha, graph) -> alpha'`` (both ``[num_cells * E, K]``), so the search loop never needs to know
which one it holds:

- :class:`GraphGuidedModule`: ``alpha' = alpha + gamma * GNN(alpha)`` with any PyG conv as the GNN;
  the GAS default is :class:`~gasgnn.ggm.convs.SimilarityGCNConv` over the ``'adjacent'`` relation.
- :class:`FCGuide`: the supplement's "fully connected layer" baseline.
- :class:`NoGuide`: no guidance, ``alpha' = alpha``.

:func:`build_guide` builds any of them from a name in :data:`GUIDES`, a ``'package.module:ClassName'``
import path, a class or an instance; :func:`register_guide` adds names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.resolver import activation_resolver

from gasgnn.ggm.builder import check_guide_scale
from gasgnn.ggm.convs import (
    CONVS,
    GuideError,
    SimilarityGCNConv,
    build_conv,
    conv_name,
    conv_output,
    import_object,
    is_conv_class,
    resolve_conv_class,
)
from gasgnn.registry import Registry
from gasgnn.space import BUILDERS, SearchSpace, build_edge_index

__all__ = ["CELL_BUILDER", "FCGuide", "GUIDES", "Guide", "GraphGuidedModule", "NoGuide", "build_guide",
           "register_guide",
           "slot_attributes"]

#: The cell-level relation of :class:`GraphGuidedModule`: one node per cell, edges ``k-1 -> k``.
CELL_BUILDER = "cells"

#: What feeds the similarity of :class:`SimilarityGCNConv` (see :meth:`GraphGuidedModule.similarity_features`).
SIM_INPUTS = ("cell_norm", "log_softmax", "raw")


def slot_attributes(space: SearchSpace) -> Tensor:
    """Fixed features of every op slot ``[num_cells * E, (M + 1) + M + 2]``: one-hot source node,
    one-hot destination node, stride 2, reduction cell (from :meth:`SearchSpace.arch_graph`)."""
    g = space.arch_graph(torch.zeros(space.num_arch_nodes, space.num_ops))
    m = space.num_nodes
    src = torch.nn.functional.one_hot(g.src, m + 1)
    dst = torch.nn.functional.one_hot(g.dst - 2, m)
    return torch.cat([src, dst, (g.stride == 2).unsqueeze(1), g.reduction.unsqueeze(1)], dim=1).float()


class Guide(nn.Module):
    """Base of the built-in guides: the space, the residual scale gamma and alpha validation.

    Subclasses implement :meth:`guidance` (the update ``Z``); :meth:`forward` returns
    ``alpha + gamma * Z``. A fixed ``gamma == 0`` returns ``alpha`` itself without computing ``Z``,
    so alpha' is bitwise alpha.

    Args:
        space (SearchSpace): The search space whose alpha the guide maps.
        gamma (float, optional): Scale of the guidance. (default: :obj:`0.5`)
        learn_gamma (bool, optional): Make gamma a learnable scalar initialised at ``gamma``.
            (default: :obj:`False`)
    """

    def __init__(self, space: SearchSpace, gamma: float = 0.5, learn_gamma: bool = False) -> None:
        super().__init__()
        if not isinstance(space, SearchSpace):
            raise GuideError(
                f"{type(self).__name__}: space must be a SearchSpace, got {type(space).__name__}"
            )
        self.space = space
        self._gamma_init = float(gamma)
        self.learn_gamma = bool(learn_gamma)
        if self.learn_gamma:
            self.gamma: Tensor | float = nn.Parameter(torch.tensor(self._gamma_init))
        else:
            self.gamma = self._gamma_init

    def reset_parameters(self) -> None:
        """Re-initialises gamma (subclasses also reset their layers)."""
        if isinstance(self.gamma, nn.Parameter):
            with torch.no_grad():
                self.gamma.fill_(self._gamma_init)

    def check(self, alpha: Tensor, graph: Data | None) -> None:
        """Raises :class:`GuideError` when ``alpha`` or ``graph`` does not belong to :attr:`space`."""
        s, name = self.space, type(self).__name__
        expected = (s.num_arch_nodes, s.num_ops)
        if alpha.dim() != 2 or tuple(alpha.shape) != expected:
            raise GuideError(
                f"{name}: alpha has shape {tuple(alpha.shape)}, expected [num_cells*E, K] = {list(expected)}"
            )
        if graph is not None:
            for key, want in (("num_cells", s.num_cells), ("edges_per_cell", s.edges_per_cell)):
                got = getattr(graph, key, None)
                if got is not None and int(got) != want:
                    raise GuideError(f"{name}: graph.{key} is {int(got)} but the guide's space has {want}")

    def guidance(self, alpha: Tensor, graph: Data | None) -> Tensor:
        """The update ``Z`` ``[num_cells * E, K]`` (before scaling by gamma)."""
        raise NotImplementedError

    def forward(self, alpha: Tensor, graph: Data | None = None) -> Tensor:
        """Maps alpha to alpha'.

        Args:
            alpha (Tensor): Architecture parameters ``[num_cells * E, K]`` aligned with the ArchGraph.
            graph (Data, optional): The ArchGraph (from :meth:`SearchSpace.arch_graph`); only needed by
                guides that read its ``edge_index``. (default: :obj:`None`)

        Returns:
            Tensor: alpha' ``[num_cells * E, K]``.
        """
        self.check(alpha, graph)
        if not isinstance(self.gamma, Tensor) and self.gamma == 0.0:
            return alpha
        return alpha + self.gamma * self.guidance(alpha, graph)

    def extra_repr(self) -> str:
        g = f"{self._gamma_init}, learnable" if self.learn_gamma else f"{self.gamma}"
        return f"gamma={g}"


class GraphGuidedModule(Guide):
    r"""The graph-guided module: a GNN over the ArchGraph refines alpha.

    .. math::
        \alpha' = \alpha + \gamma \, \mathrm{GNN}(\alpha)

    where the GNN is ``num_layers`` message-passing layers (``K -> hidden -> ... -> K``, with ``act``
    between them) over the relation made by ``builder``. With the defaults (``conv='gcn_sim'``,
    ``builder='adjacent'``, one layer) this is the GAS update
    :math:`\alpha'_k = \alpha_k + \gamma\, \mathrm{softmax}_j(\phi(\alpha_{k,i}) \cdot
    \phi'(\alpha_{k-1,j}))\, \alpha_{k-1} W`.

    Args:
        space (SearchSpace): The search space (fixes K, the cells and the relation).
        conv (str, type or MessagePassing, optional): The layer: a name in
            :data:`~gasgnn.ggm.convs.CONVS` (``'gcn_sim'``, ``'gcn'``, ``'gat'``, ``'gatv2'``, ``'sage'``,
            ``'gin'``, ``'transformer'``), ``'package.module:ClassName'``, a :class:`MessagePassing`
            class (built as ``cls(in_channels, out_channels, **conv_kwargs)``) or an instance (then
            ``num_layers`` must be 1). (default: :obj:`"gcn_sim"`)
        builder (str, optional): The relation the GNN runs on: a name in
            :data:`gasgnn.space.builders.BUILDERS` (``'adjacent'``, ``'aligned'``, ``'all_previous'``, ...),
            ``'cells'`` (one node per cell with its flattened ``E*K`` alpha, edges ``k-1 -> k``), or
            :obj:`None` to use ``graph.edge_index`` as handed to :meth:`forward`.
            (default: :obj:`"adjacent"`)
        gamma (float, optional): Scale of the guidance. (default: :obj:`0.5`)
        num_layers (int, optional): Message-passing layers. (default: :obj:`1`)
        hidden_channels (int, optional): Width between layers, and the inner width of convs that
            have one (gcn_sim's similarity embeddings, GIN's MLP). (default: :obj:`16`)
        learn_gamma (bool, optional): Make gamma learnable. (default: :obj:`False`)
        act (str, optional): Nonlinearity between layers. (default: :obj:`"relu"`)
        builder_kwargs (dict, optional): Passed to the builder. (default: :obj:`None`)
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
        **conv_kwargs: Any,
    ) -> None:
        super().__init__(space, gamma=gamma, learn_gamma=learn_gamma)
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
        self.conv_spec = conv_name(conv)
        self.builder = builder
        self.num_layers = num_layers
        self.hidden_channels = hidden_channels
        E, K, L = space.edges_per_cell, space.num_ops, space.num_cells
        # In cell mode every node is a whole cell: its E rows of alpha, flattened.
        self.feat_channels = E * K if builder == CELL_BUILDER else K
        dims = [self.feat_channels] + [hidden_channels] * (num_layers - 1) + [self.feat_channels]
        # Similarity features (only for SimilarityGCNConv): a scale-free view of alpha plus the fixed slot
        # attributes, the same for every layer. Why: raw alpha at its 1e-3 initial scale gives scores of
        # ~1e-6, i.e. uniform attention that weight decay keeps uniform (docs/ggm.md, "Making the
        # similarity learn").
        self.sim_input = sim_input
        is_sim = conv == "gcn_sim" or (isinstance(conv, type) and issubclass(conv, SimilarityGCNConv))
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
        for i, conv in enumerate(self.convs):
            if sim_x is not None:
                h = conv(h, edge_index, sim_x=sim_x)
            else:
                h = conv_output(conv, h, edge_index)
            if i < self.num_layers - 1:
                h = self.act(h)
        if tuple(h.shape) != (n, self.feat_channels):
            raise GuideError(
                f"GraphGuidedModule: conv '{self.conv_spec}' returned shape {tuple(h.shape)}, expected "
                f"{[n, self.feat_channels]} (a conv must map in_channels to out_channels features)"
            )
        return h.reshape_as(alpha)

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
        return (
            f"conv={self.conv_spec!r}, builder={self.builder!r}, num_layers={self.num_layers}{sim}, "
            f"{super().extra_repr()}"
        )


class FCGuide(Guide):
    r"""The supplement's baseline: a fully connected layer instead of the GCN.

    .. math::
        \alpha'_0 = \alpha_0, \qquad \alpha'_k = \alpha_k + \gamma\, \mathrm{MLP}(\mathrm{vec}(\alpha_{k-1}))
        \quad (k \geq 1)

    One MLP, shared by all cells (as the GCN's weights are), maps the flattened ``E*K`` alpha of cell
    ``k-1`` to an update of cell ``k``. Its output bias starts at zero, so alpha' starts near alpha.

    Args:
        space (SearchSpace): The search space.
        gamma (float, optional): Scale of the guidance. (default: :obj:`0.5`)
        num_layers (int, optional): Linear layers of the MLP; 1 is a single fully connected layer.
            (default: :obj:`1`)
        hidden_channels (int, optional): MLP width when ``num_layers > 1``. (default: :obj:`64`)
        learn_gamma (bool, optional): Make gamma learnable. (default: :obj:`False`)
        act (str, optional): Nonlinearity between linear layers. (default: :obj:`"relu"`)
    """

    def __init__(
        self,
        space: SearchSpace,
        gamma: float = 0.5,
        num_layers: int = 1,
        hidden_channels: int = 64,
        learn_gamma: bool = False,
        act: str = "relu",
    ) -> None:
        super().__init__(space, gamma=gamma, learn_gamma=learn_gamma)
        if not isinstance(num_layers, int) or num_layers < 1:
            raise GuideError(f"FCGuide.num_layers: must be a positive integer, got {num_layers!r}")
        F = space.edges_per_cell * space.num_ops
        dims = [F] + [hidden_channels] * (num_layers - 1) + [F]
        layers: list[nn.Module] = []
        for i in range(num_layers):
            if i:
                layers.append(activation_resolver(act))
            layers.append(nn.Linear(dims[i], dims[i + 1]))
        self.mlp = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                m.reset_parameters()
        # A random output bias would add the same op preference to every cell before any search step;
        # starting it at zero keeps alpha' = alpha + gamma * W alpha_{k-1}, near alpha.
        nn.init.zeros_(self.mlp[-1].bias)

    def guidance(self, alpha: Tensor, graph: Data | None) -> Tensor:
        L = self.space.num_cells
        cells = alpha.reshape(L, -1)
        z = torch.cat([torch.zeros_like(cells[:1]), self.mlp(cells[:-1])])
        return z.reshape_as(alpha)


class NoGuide(Guide):
    """No guidance: ``alpha' = alpha`` (the same tensor), no parameters.

    Args:
        space (SearchSpace): The search space (only used to validate alpha).
    """

    def __init__(self, space: SearchSpace) -> None:
        super().__init__(space, gamma=0.0)

    def extra_repr(self) -> str:
        return ""


# ------------------------------------------------------------------------------------------------
# Registry

GuideFactory = Callable[..., nn.Module]
#: Registered guidance modules by name: ``factory(space, **kwargs) -> nn.Module``.
GUIDES: Registry[GuideFactory] = Registry("guide")


def register_guide(name: str, overwrite: bool = False) -> Callable[[GuideFactory], GuideFactory]:
    """Registers ``factory(space, **kwargs) -> nn.Module`` (a class or a function) as guide ``name``.

    The module must implement ``forward(alpha, graph) -> alpha'`` with alpha ``[num_cells * E, K]``.

    Args:
        name (str): The name used by :func:`build_guide` and ``--guide``; it may not contain ``':'``
            (reserved for import paths).
        overwrite (bool, optional): Replace an existing registration. (default: :obj:`False`)

    Returns:
        The decorator, which returns the factory unchanged.
    """
    if not isinstance(name, str) or not name or ":" in name:
        raise GuideError(f"register_guide: name must be a non-empty string without ':', got {name!r}")

    return GUIDES.register(name, overwrite=overwrite)


def _conv_guide(conv: str) -> GuideFactory:
    def factory(space: SearchSpace, **kwargs: Any) -> nn.Module:
        return GraphGuidedModule(space, conv=conv, **kwargs)

    factory.__doc__ = f"GraphGuidedModule(space, conv='{conv}', **kwargs)."
    return factory


for _name in CONVS:
    register_guide(_name)(_conv_guide(_name))


@register_guide("gcn_sim_raw")
def _gcn_sim_raw(space: SearchSpace, **kwargs: Any) -> nn.Module:
    """GraphGuidedModule(space, conv='gcn_sim') on raw alpha, without slot attributes: the guide before
    issue 16 (with ``SearchConfig(guide_weight_decay=1e-3)`` also its optimisation), kept for comparisons."""
    kwargs = {"sim_input": "raw", "slot_features": False, **kwargs}
    return GraphGuidedModule(space, conv="gcn_sim", **kwargs)


register_guide("fc")(FCGuide)
register_guide("none")(NoGuide)


def build_guide(spec: Any, space: SearchSpace, **kwargs: Any) -> nn.Module:
    """Builds a guidance module.

    Args:
        spec (str, type or nn.Module): One of

            - a name in :data:`GUIDES`: ``'gcn_sim'`` (the GAS default), ``'gcn'``, ``'gat'``, ``'gatv2'``,
              ``'sage'``, ``'gin'``, ``'transformer'``, ``'fc'``, ``'none'`` or a registered name;
            - ``'package.module:ClassName'`` naming one of the below;
            - a :class:`MessagePassing` class or instance: wrapped in :class:`GraphGuidedModule`;
            - an :class:`nn.Module` guide class, built as ``cls(space, **kwargs)``;
            - an :class:`nn.Module` guide instance, returned as it is;
            - :obj:`None`, the same as ``'none'``.
        space (SearchSpace): The search space.
        **kwargs (optional): Passed to the guide's constructor (e.g. ``gamma``, ``builder``, ``heads``).

    Returns:
        nn.Module: a module with ``forward(alpha, graph) -> alpha'``.
    """
    if spec is None:
        spec = "none"
    label = repr(spec)  # how errors name the spec
    if isinstance(spec, str):
        if spec in GUIDES:
            return GUIDES[spec](space, **kwargs)
        pyg = resolve_conv_class(spec)  # any class of torch_geometric.nn.conv by name, e.g. 'APPNP'
        if pyg is None and ":" not in spec:
            raise GuideError(
                f"unknown guide '{spec}'; registered: {sorted(GUIDES)}, a class of torch_geometric.nn.conv, "
                "or 'package.module:ClassName'"
            )
        label, spec = f"'{spec}'", pyg if pyg is not None else import_object(spec, "guide")
    if isinstance(spec, MessagePassing) or is_conv_class(spec) or is_conv_class(type(spec)):
        guide = GraphGuidedModule(space, conv=spec, **kwargs)
        if is_conv_class(spec) and spec.__module__.startswith("torch_geometric."):
            # PyG's convs were not designed for 1e-3-scale inputs: refuse silent blow-ups at build time.
            gen = torch.Generator().manual_seed(0)
            check_guide_scale(guide, space.init_alpha(generator=gen), space.arch_graph(), conv_name(spec))
        return guide
    if isinstance(spec, type) and issubclass(spec, nn.Module):
        return spec(space, **kwargs)
    if isinstance(spec, nn.Module):
        if kwargs:
            raise GuideError(
                f"guide {type(spec).__name__}: an instance is used as it is; got options {sorted(kwargs)}"
            )
        return spec
    raise GuideError(
        f"guide {label}: expected a registered name, 'package.module:ClassName', a MessagePassing "
        f"class/instance or an nn.Module guide class/instance (got {type(spec).__name__})"
    )
