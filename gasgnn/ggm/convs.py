"""Message-passing layers for the graph-guided module: the GAS similarity GCN and any PyG conv.

:class:`SimilarityGCNConv` is the default GGM layer. :func:`build_conv` turns a conv *spec* (a name from
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
from torch_geometric.typing import Adj, OptTensor, PairTensor
from torch_geometric.utils import softmax

from gasgnn.ggm.builder import build_pyg_conv
from gasgnn.ggm.errors import GuideError


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


# ------------------------------------------------------------------------------------------------
# Named convs: factory(in_channels, out_channels, hidden_channels, **kwargs) -> MessagePassing

ConvFactory = Callable[..., MessagePassing]
CONVS: dict[str, ConvFactory] = {}


def _register(name: str) -> Callable[[ConvFactory], ConvFactory]:
    def deco(fn: ConvFactory) -> ConvFactory:
        CONVS[name] = fn
        return fn

    return deco


@_register("gcn_sim")
def _gcn_sim(in_channels: int, out_channels: int, hidden_channels: int, **kw: Any) -> MessagePassing:
    return SimilarityGCNConv(in_channels, out_channels, hidden_channels=hidden_channels, **kw)


@_register("gcn")
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


CONVS["gat"] = _headed(GATConv)
CONVS["gatv2"] = _headed(GATv2Conv)
CONVS["transformer"] = _headed(TransformerConv)


@_register("sage")
def _sage(in_channels: int, out_channels: int, hidden_channels: int, **kw: Any) -> MessagePassing:
    return SAGEConv(in_channels, out_channels, **kw)


@_register("gin")
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


def conv_output(conv: MessagePassing, x: Tensor, edge_index: Tensor) -> Tensor:
    """Calls ``conv(x, edge_index)`` and unwraps convs that return ``(out, extras)``."""
    out = conv(x, edge_index)
    if isinstance(out, tuple):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise GuideError(f"conv {type(conv).__name__} returned {type(out).__name__}, expected a Tensor")
    return out
