"""Message-passing layers for the graph-guided module: named convs and any PyG conv.

:class:`~gasgnn.ggm.SimilarityGCNConv` (:mod:`gasgnn.ggm.sim_conv`) is the default GGM layer.
:func:`build_conv` turns a conv *spec* (a name from
:data:`CONVS`, a ``'package.module:ClassName'`` import path, a :class:`MessagePassing` class or an
instance) into a layer mapping ``in_channels`` to ``out_channels`` features, hiding each PyG conv's
constructor quirks (GIN needs an MLP, GAT/Transformer heads must be averaged, ...).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GATv2Conv, GCNConv, GINConv, MessagePassing, SAGEConv, TransformerConv

from gasgnn.ggm.builder import build_pyg_conv
from gasgnn.ggm.errors import GuideError
from gasgnn.ggm.sim_conv import SimilarityGCNConv
from gasgnn.ggm.slot_conv import SlotSimilarityConv
from gasgnn.registry import Registry

# ------------------------------------------------------------------------------------------------
# Named convs: factory(in_channels, out_channels, hidden_channels, **kwargs) -> MessagePassing

ConvFactory = Callable[..., MessagePassing]
#: Named GGM layers: ``factory(in_channels, out_channels, hidden_channels, **kwargs) -> MessagePassing``.
CONVS: Registry[ConvFactory] = Registry("conv")


@CONVS.register("gcn_sim", similarity=True)
def _gcn_sim(in_channels: int, out_channels: int, hidden_channels: int, **kw: Any) -> MessagePassing:
    return SimilarityGCNConv(in_channels, out_channels, hidden_channels=hidden_channels, **kw)


@CONVS.register("slot_sim", similarity=True)
def _slot_sim(in_channels: int, out_channels: int, hidden_channels: int, **kw: Any) -> MessagePassing:
    return SlotSimilarityConv(in_channels, out_channels, hidden_channels=hidden_channels, **kw)


@CONVS.register("gcn")
def _gcn(in_channels: int, out_channels: int, hidden_channels: int, **kw: Any) -> MessagePassing:
    # Self-loops (PyG's default) are fine: ArchGraph edges only come from earlier cells, so a loop just
    # lets a slot keep part of its own alpha in the normalised sum.
    return GCNConv(in_channels, out_channels, **kw)


def _headed(cls: type[MessagePassing]) -> ConvFactory:
    def factory(in_channels: int, out_channels: int, hidden_channels: int, **kw: Any) -> MessagePassing:
        heads = kw.pop("heads", 1)
        concat = kw.pop("concat", False)
        if concat:
            # Concatenated heads must add up to out_channels (the GGM needs exactly K outputs).
            if out_channels % heads:
                raise GuideError(
                    f"{cls.__name__}: concat=True needs out_channels ({out_channels}) divisible by "
                    f"heads ({heads})"
                )
            return cls(in_channels, out_channels // heads, heads=heads, concat=True, **kw)
        return cls(in_channels, out_channels, heads=heads, concat=False, **kw)

    return factory


CONVS.register("gat", _headed(GATConv))
CONVS.register("gatv2", _headed(GATv2Conv))
CONVS.register("transformer", _headed(TransformerConv))


@CONVS.register("sage")
def _sage(in_channels: int, out_channels: int, hidden_channels: int, **kw: Any) -> MessagePassing:
    return SAGEConv(in_channels, out_channels, **kw)


@CONVS.register("gin")
def _gin(in_channels: int, out_channels: int, hidden_channels: int, **kw: Any) -> MessagePassing:
    mlp = nn.Sequential(
        nn.Linear(in_channels, hidden_channels), nn.ReLU(), nn.Linear(hidden_channels, out_channels)
    )
    return GINConv(mlp, **kw)


# ------------------------------------------------------------------------------------------------


def import_object(path: str, what: str = "object") -> Any:
    """Imports ``'package.module:Name'`` (``Name`` may be dotted, e.g. ``Outer.Inner``).

    Args:
        path (str): The import path.
        what (str, optional): What the caller expects, for error messages. (default: :obj:`"object"`)

    Raises:
        GuideError: naming the path when the module or attribute cannot be found.
    """
    mod_name, sep, attr = path.partition(":")
    if not sep or not mod_name or not attr:
        raise GuideError(f"{what} '{path}': an import path must look like 'package.module:ClassName'")
    try:
        obj: Any = importlib.import_module(mod_name)
    except ImportError as e:
        raise GuideError(f"{what} '{path}': cannot import module '{mod_name}' ({e})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise GuideError(f"{what} '{path}': module '{mod_name}' has no attribute '{attr}'")
        obj = getattr(obj, part)
    return obj


def conv_name(conv: Any) -> str:
    """A short human-readable name of a conv spec, for ``repr`` and errors."""
    if isinstance(conv, str):
        return conv
    if isinstance(conv, type):
        return f"{conv.__module__}:{conv.__qualname__}"
    return type(conv).__name__


def resolve_conv_class(name: str) -> type | None:
    """The class ``torch_geometric.nn.conv.<name>`` (e.g. ``'APPNP'``, ``'GPSConv'``), or :obj:`None`."""
    import torch_geometric.nn.conv as pyg_conv

    obj = getattr(pyg_conv, name, None) if name in getattr(pyg_conv, "__all__", ()) else None
    return obj if isinstance(obj, type) else None


def is_conv_class(obj: Any) -> bool:
    """Whether ``obj`` is a conv class: a :class:`MessagePassing` subclass, or a module class of
    ``torch_geometric.nn.conv`` (the wrappers ``GPSConv``, ``DirGNNConv``, ``AntiSymmetricConv`` are
    plain modules that take an inner conv)."""
    if not isinstance(obj, type) or not issubclass(obj, nn.Module):
        return False
    return issubclass(obj, MessagePassing) or obj.__module__.startswith("torch_geometric.nn.conv")


def build_conv(conv: Any, in_channels: int, out_channels: int, hidden_channels: int = 16,
               **kwargs: Any) -> nn.Module:
    """Builds one message-passing layer from a conv spec.

    Args:
        conv (str, type or nn.Module): A name in :data:`CONVS` (``'gcn_sim'``, ``'gcn'``, ``'gat'``,
            ``'gatv2'``, ``'sage'``, ``'gin'``, ``'transformer'``), the name of any class in
            ``torch_geometric.nn.conv`` (``'APPNP'``, ``'GPSConv'``, ...), an import path
            ``'package.module:ClassName'``, a conv class or an instance (returned as it is). PyG's
            classes are built from their constructor's signature by
            :func:`gasgnn.ggm.builder.build_pyg_conv` (widths by parameter name, projections for
            width-keeping convs, zero-initialised biases); a user's class with ``in_channels`` and
            ``out_channels`` parameters is called as ``cls(in_channels=..., out_channels=..., **kwargs)``.
        in_channels (int): Input feature size.
        out_channels (int): Output feature size.
        hidden_channels (int, optional): Inner width where a conv has one (the similarity embeddings of
            ``gcn_sim``, GIN's MLP). (default: :obj:`16`)
        **kwargs (optional): Passed to the conv's constructor.

    Returns:
        nn.Module: the layer, ``forward(x, edge_index)``.

    Raises:
        GuideError: naming the conv, the parameter and what to pass, whenever it cannot be built or run.
    """

    what = f"conv '{conv_name(conv)}'"
    if isinstance(conv, str):
        if conv in CONVS:
            return CONVS[conv](in_channels, out_channels, hidden_channels, **kwargs)
        cls = resolve_conv_class(conv)
        if cls is None and ":" not in conv:
            raise GuideError(
                f"unknown conv '{conv}'; named convs: {sorted(CONVS)}, a class of torch_geometric.nn.conv, "
                "or 'package.module:ClassName'"
            )
        conv = cls if cls is not None else import_object(conv, "conv")
    if isinstance(conv, nn.Module) and (isinstance(conv, MessagePassing) or is_conv_class(type(conv))):
        if kwargs:
            raise GuideError(f"{what}: an instance is used as it is; cannot apply options {sorted(kwargs)}")
        return conv
    if not is_conv_class(conv):
        raise GuideError(
            f"{what}: not a torch_geometric MessagePassing class or instance, nor a torch_geometric.nn.conv "
            f"module (got {conv!r})"
        )
    if not conv.__module__.startswith("torch_geometric."):
        import inspect

        params = inspect.signature(conv.__init__).parameters
        if "in_channels" in params and "out_channels" in params:
            try:
                return conv(in_channels=in_channels, out_channels=out_channels, **kwargs)
            except TypeError as e:
                raise GuideError(
                    f"{what}: could not build {conv.__name__}(in_channels={in_channels}, "
                    f"out_channels={out_channels}, **{kwargs}): {e}"
                ) from None
    return build_pyg_conv(conv, in_channels, out_channels, hidden_channels, build_inner=build_conv, **kwargs)


def uses_similarity(conv: Any) -> bool:
    """Whether a conv spec takes the guide's similarity features.

    Such a conv is built with ``sim_channels=F`` (the width of the features) and called as
    ``conv(x, edge_index, sim_x=s)``; :class:`~gasgnn.ggm.GraphGuidedModule` then computes ``s`` (a
    scale-free view of alpha plus the slot attributes). A conv declares it by a class (or instance)
    attribute ``similarity_features = True``, as :class:`~gasgnn.ggm.SimilarityGCNConv` does, whatever
    its base class; a name in :data:`CONVS` by the registry metadata ``similarity=True``
    (``CONVS.register("mine", factory, similarity=True)``) or, without that key, by the attribute of the
    registered class.

    Args:
        conv (str, type or nn.Module): A conv spec as :func:`build_conv` takes it.

    Returns:
        bool: :obj:`True` when the conv takes ``sim_x``.
    """
    if isinstance(conv, str):
        if conv in CONVS:
            meta = CONVS.meta(conv)
            return bool(meta["similarity"]) if "similarity" in meta else uses_similarity(CONVS[conv])
        cls = resolve_conv_class(conv)
        if cls is None and ":" in conv:
            cls = import_object(conv, "conv")
        return cls is not None and uses_similarity(cls)
    return bool(getattr(conv, "similarity_features", False))


def conv_output(conv: MessagePassing, x: Tensor, edge_index: Tensor) -> Tensor:
    """Calls ``conv(x, edge_index)`` and unwraps convs that return ``(out, extras)``."""
    out = conv(x, edge_index)
    if isinstance(out, tuple):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise GuideError(f"conv {type(conv).__name__} returned {type(out).__name__}, expected a Tensor")
    return out
