"""Graph-guided modules (GGM): map the architecture parameters alpha to alpha' over the ArchGraph.

Every guide is an :class:`torch.nn.Module` built as ``Guide(space, **kwargs)`` with the one contract
``forward(alpha, graph) -> alpha'`` (both ``[num_cells * E, K]``), so the search loop never needs to know
which one it holds:

- :class:`~gasgnn.ggm.GraphGuidedModule` (:mod:`gasgnn.ggm.graph_guide`): ``alpha' = alpha + gamma *
  GNN(alpha)`` with any PyG conv as the GNN; the default ``'slot_sim'`` uses
  :class:`~gasgnn.ggm.SlotSimilarityConv` with the bounded update, ``'gcn_sim'`` the GAS algebra
  (:class:`~gasgnn.ggm.SimilarityGCNConv`), both over the ``'adjacent'`` relation.
- :class:`FCGuide`: the supplement's "fully connected layer" baseline.
- :class:`NoGuide`: no guidance, ``alpha' = alpha``.

:func:`build_guide` builds any of them from a name of :func:`guide_names` (the registered guides of
:data:`GUIDES` and the named convs of :data:`~gasgnn.ggm.convs.CONVS`, looked up when it runs), a
``'package.module:ClassName'`` import path, a class or an instance; :func:`register_guide` adds names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.resolver import activation_resolver

from gasgnn.ggm.base import Guide
from gasgnn.ggm.builder import check_guide_scale
from gasgnn.ggm.convs import CONVS, conv_name, import_object, is_conv_class, resolve_conv_class
from gasgnn.ggm.errors import GuideError
from gasgnn.ggm.graph_guide import GraphGuidedModule
from gasgnn.registry import Registry
from gasgnn.space import SearchSpace

__all__ = ["DEFAULT_GUIDE", "FCGuide", "GUIDES", "NoGuide", "build_guide", "guide_names", "register_guide"]

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
        bounded (bool, optional): Bound the update below ``gamma * ||alpha||`` (:class:`Guide`).
            (default: :obj:`False`)
    """

    def __init__(
        self,
        space: SearchSpace,
        gamma: float = 0.5,
        num_layers: int = 1,
        hidden_channels: int = 64,
        learn_gamma: bool = False,
        act: str = "relu",
        bounded: bool = False,
    ) -> None:
        super().__init__(space, gamma=gamma, learn_gamma=learn_gamma, bounded=bounded)
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


#: The guide of a search unless told otherwise (``SearchConfig.guide``, ``gasgnn search --guide``).
DEFAULT_GUIDE = "slot_sim"


@register_guide("gcn_sim")
def _gcn_sim(space: SearchSpace, **kwargs: Any) -> nn.Module:
    """GraphGuidedModule(space, conv='gcn_sim'): the GAS algebra on per-cell standardised alpha plus the
    slot attributes, with a fixed gamma and no bound (the default of issues 16-28; on CamVid its attention
    collapses onto one hub slot per cell and its update outgrows alpha, docs/ggm.md)."""
    return GraphGuidedModule(space, conv="gcn_sim", **kwargs)


@register_guide("slot_sim")
def _slot_sim(space: SearchSpace, **kwargs: Any) -> nn.Module:
    """The default guide: GraphGuidedModule with :class:`~gasgnn.ggm.SlotSimilarityConv` (normalised key,
    Sinkhorn-balanced attention, a slot-identity prior) and the bounded update (docs/ggm.md, "A guide that
    shares between slots"). Every setting can be overridden by keyword."""
    kwargs = {"bounded": True, "num_positions": space.edges_per_cell, **kwargs}
    return GraphGuidedModule(space, conv="slot_sim", **kwargs)


@register_guide("gcn_sim_raw")
def _gcn_sim_raw(space: SearchSpace, **kwargs: Any) -> nn.Module:
    """GraphGuidedModule(space, conv='gcn_sim') on raw alpha, without slot attributes: the guide before
    issue 16 (with ``SearchConfig(guide_weight_decay=1e-3)`` also its optimisation), kept for comparisons."""
    kwargs = {"sim_input": "raw", "slot_features": False, **kwargs}
    return GraphGuidedModule(space, conv="gcn_sim", **kwargs)


register_guide("fc")(FCGuide)
register_guide("none")(NoGuide)


def guide_names() -> list[str]:
    """Every name :func:`build_guide` accepts: the registered guides and the named convs of
    :data:`~gasgnn.ggm.convs.CONVS` (each a :class:`GraphGuidedModule` with that conv), sorted.

    Looked up when called, so a conv registered after import is a guide too."""
    return sorted(set(GUIDES) | set(CONVS))


def build_guide(spec: Any, space: SearchSpace, **kwargs: Any) -> nn.Module:
    """Builds a guidance module.

    Args:
        spec (str, type or nn.Module): One of

            - a name of :func:`guide_names`: a registered guide (:data:`GUIDES`: ``'slot_sim'`` the
              default, ``'gcn_sim'`` the GAS algebra, ``'gcn_sim_raw'``, ``'fc'``, ``'none'``, ...) or a named
              conv of :data:`~gasgnn.ggm.convs.CONVS` (``'gcn'``, ``'gat'``, ``'gatv2'``, ``'sage'``, ``'gin'``,
              ``'transformer'``, ``'gcn_sim'``, ...), built as ``GraphGuidedModule(space, conv=name)``;
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
        if spec in CONVS:  # looked up now: convs registered after import are guides as well
            return GraphGuidedModule(space, conv=spec, **kwargs)
        pyg = resolve_conv_class(spec)  # any class of torch_geometric.nn.conv by name, e.g. 'APPNP'
        if pyg is None and ":" not in spec:
            raise GuideError(
                f"unknown guide '{spec}'; registered: {guide_names()}, a class of torch_geometric.nn.conv, "
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
