"""Any PyG conv as a guide layer, built from its constructor's signature.

:func:`build_pyg_conv` reads ``inspect.signature`` of a conv class and passes widths *by name* only
(``in_channels`` / ``out_channels`` / ``channels``), never positionally into other parameters (calling
``APPNP(8, 8)`` would silently mean ``K=8, alpha=8``). What it cannot fill raises
:class:`~gasgnn.ggm.GuideError` naming the conv, the parameter and what to pass. The result is a
:class:`PyGGuideConv`: the conv plus what it needs to map ``in_channels`` to ``out_channels`` features on
``(x, edge_index)``:

- width-keeping convs (a ``channels`` parameter, no ``out_channels``, or wrappers such as
  :class:`~torch_geometric.nn.conv.GPSConv` and :class:`~torch_geometric.nn.conv.DirGNNConv` that take
  an inner ``conv``) get a linear projection when their output width differs from ``out_channels``;
- convs whose ``forward`` wants ``x_0`` (GCN2Conv, FAConv) get alpha as its initial features;
- biases start at zero: a random bias would add the same op preference to every op slot before any
  search step, on a scale far above alpha's (1e-3).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from gasgnn.ggm.errors import GuideError

#: Constructor parameters holding an MLP that gasgnn can build: name -> input-width multiplier.
_MLP_PARAMS: dict[str, int] = {"nn": 1}
#: Convs whose ``nn`` sees ``[x_i, x_j - x_i]`` (twice the width).
_PAIR_MLP = ("EdgeConv", "DynamicEdgeConv")
#: Constructor parameters taking an inner conv (wrappers); built as a ``conv_spec`` of width ``channels``.
_INNER_CONV_PARAMS = ("conv", "phi")
#: Options of :class:`~gasgnn.ggm.GraphGuidedModule` itself: a conv parameter of the same name is passed as
#: ``conv_<name>`` (e.g. GatedGraphConv's ``num_layers`` as ``conv_num_layers``).
GUIDE_OPTIONS = ("conv", "builder", "gamma", "num_layers", "hidden_channels", "learn_gamma", "act",
                 "builder_kwargs")
#: ``forward`` parameters gasgnn can fill from alpha itself.
_X_LIKE = ("x_0",)


def _guide_error(msg: str) -> Exception:
    return GuideError(msg)


def _class_inner(spec: Any, in_channels: int, out_channels: int, hidden_channels: int) -> nn.Module:
    """A wrapper's inner conv without the name registry: a class (``'gcn'`` is PyG's GCNConv)."""
    from torch_geometric.nn import GCNConv

    if spec == "gcn":
        spec = GCNConv
    if not isinstance(spec, type):
        raise _guide_error(f"inner conv {spec!r}: pass a conv class here, or build the guide with build_conv")
    return build_pyg_conv(spec, in_channels, out_channels, hidden_channels)


def _params(fn: Any) -> list[inspect.Parameter]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    return [p for n, p in sig.parameters.items() if n != "self"]


def _fmt(p: inspect.Parameter) -> str:
    ann = p.annotation
    if ann is inspect.Parameter.empty:
        return p.name
    name = ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann))
    return f"{p.name} ({str(name).replace('typing.', '')})"


def _mlp(c_in: int, hidden: int, c_out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(c_in, hidden), nn.ReLU(), nn.Linear(hidden, c_out))


class PyGGuideConv(nn.Module):
    """A PyG conv adapted to ``forward(x, edge_index) -> [N, out_channels]`` for a guide.

    Args:
        conv (nn.Module): The built conv.
        in_channels (int): Input width.
        out_channels (int): Output width.
        conv_out (int): The conv's own output width (a projection follows when it differs).
        x_args (tuple, optional): ``forward`` parameters filled with ``x`` (e.g. ``x_0``). (default: ``()``)
    """

    def __init__(self, conv: nn.Module, in_channels: int, out_channels: int, conv_out: int,
                 x_args: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.conv = conv
        self.in_channels, self.out_channels = in_channels, out_channels
        self.x_args = tuple(x_args)
        self.proj = nn.Linear(conv_out, out_channels, bias=False) if conv_out != out_channels else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.conv.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()
        if self.proj is not None:
            self.proj.reset_parameters()
        with torch.no_grad():
            for name, p in self.conv.named_parameters():
                if name.split(".")[-1].startswith("bias"):
                    p.zero_()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        out = self.conv(x, edge_index=edge_index, **{a: x for a in self.x_args})
        if isinstance(out, tuple):
            out = out[0]
        return self.proj(out) if self.proj is not None else out

    def __repr__(self) -> str:
        proj = f", proj={self.proj.in_features}->{self.out_channels}" if self.proj is not None else ""
        return f"PyGGuideConv({self.conv!r}{proj})"


def _check_forward(cls: type, name: str) -> tuple[str, ...]:
    """The ``x``-like ``forward`` arguments to fill; raises when the forward needs what the ArchGraph lacks."""
    ps = [p for p in _params(cls.forward) if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if len(ps) < 2:
        raise _guide_error(f"conv {name}: forward{tuple(p.name for p in ps)} does not take (x, edge_index)")
    names = [p.name for p in ps]
    if "edge_index" not in names and "adj_t" not in names:
        # HypergraphConv takes a hyperedge incidence list: same tensor shape, different meaning.
        raise _guide_error(
            f"conv {name}: forward takes {names[1]!r}, not an edge_index; reading the ArchGraph's edges as "
            f"{names[1]!r} would silently mean something else. Use a conv whose forward is (x, edge_index)"
        )
    x_args, missing = [], []
    for p in ps[1:]:
        if p.name in ("edge_index", "adj_t") or p.default is not inspect.Parameter.empty:
            continue
        if p.name in _X_LIKE:
            x_args.append(p.name)
        else:
            missing.append(p.name)
    if missing:
        raise _guide_error(
            f"conv {name}: forward needs {missing}, which the ArchGraph does not have (it gives only x = "
            f"alpha and edge_index); it cannot run as a guide"
        )
    return tuple(x_args)


def build_pyg_conv(cls: type, in_channels: int, out_channels: int, hidden_channels: int = 16, *,
                   build_inner: Callable[..., nn.Module] | None = None, **kwargs: Any) -> PyGGuideConv:
    """Builds the PyG conv class ``cls`` from its constructor's signature.

    Args:
        cls (type): A conv class (a :class:`~torch_geometric.nn.MessagePassing` subclass or a wrapper
            module such as ``GPSConv``).
        in_channels (int): Input width.
        out_channels (int): Output width.
        hidden_channels (int, optional): Width of MLPs gasgnn builds for ``nn`` parameters (GIN,
            EdgeConv). (default: :obj:`16`)
        **kwargs (optional): Constructor arguments; one named like a guide option (:data:`GUIDE_OPTIONS`)
            takes a ``conv_`` prefix (``conv_num_layers=2``). A wrapper's inner conv (``conv`` of GPSConv and
            DirGNNConv, ``phi`` of AntiSymmetricConv) is ``inner_conv`` (or ``phi``): a conv spec (a name
            such as ``'gcn'``, a class or an import path) built at the wrapper's width; default ``'gcn'``.
        build_inner (callable, optional): ``build_inner(spec, in, out, hidden)`` building a wrapper's inner
            conv from a spec (:func:`gasgnn.ggm.build_conv` passes itself); :obj:`None` takes classes and
            instances only (and ``'gcn'``, the default). (default: :obj:`None`)

    Raises:
        GuideError: naming the conv and the parameter(s) to pass when it cannot be built or run.
    """
    from torch_geometric.nn import MessagePassing

    name = cls.__name__
    hint = "pass it with guide_kwargs={...} (Python) or --guide-arg KEY=VALUE (CLI)"
    if cls is MessagePassing or (inspect.isabstract(cls)) or cls.forward is MessagePassing.forward:
        raise _guide_error(f"conv {name}: a base class without a forward; subclass it or pick a conv")
    x_args = _check_forward(cls, name)
    # ``conv`` is the guide's own option, so a wrapper's inner conv comes as ``inner_conv``.
    inner = kwargs.pop("inner_conv", None)
    ps = _params(cls.__init__)
    names = {p.name for p in ps}
    for key in [k for k in kwargs if k.startswith("conv_") and k[5:] in GUIDE_OPTIONS]:
        kwargs[key[5:]] = kwargs.pop(key)
    var_kw = any(p.kind is p.VAR_KEYWORD for p in ps)
    if any(p.kind is p.VAR_POSITIONAL for p in ps) and not names - {"args", "kwargs"}:
        raise _guide_error(f"conv {name}: its constructor takes only *args/**kwargs; build an instance yourself")
    unknown = [k for k in kwargs if k not in names] if not var_kw else []
    if unknown:
        raise _guide_error(
            f"conv {name}: no constructor parameter(s) {unknown}; it takes "
            f"{[p.name for p in ps if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]}"
        )
    args: dict[str, Any] = {}
    width = in_channels  # width of a width-keeping conv
    if "out_channels" in names:
        args["out_channels"] = out_channels
        if "in_channels" in names:
            args["in_channels"] = in_channels
        elif "channels" in names:
            args["channels"] = in_channels
        conv_out = out_channels
    else:
        for key in ("channels", "in_channels"):
            if key in names:
                args[key] = in_channels
        conv_out = in_channels
    for key in _INNER_CONV_PARAMS:
        if key in names and (key in kwargs or inner is not None or _required(ps, key)):
            spec = kwargs.pop(key, None) or inner or "gcn"
            inner = None
            args[key] = spec if isinstance(spec, nn.Module) else (build_inner or _class_inner)(
                spec, width, width, hidden_channels)
    for key, mult in _MLP_PARAMS.items():
        if key in names and key not in kwargs and _required(ps, key):
            m = 2 if name in _PAIR_MLP else mult
            args[key] = _mlp(m * in_channels, hidden_channels, out_channels)
            conv_out = out_channels
    if inner is not None:
        raise _guide_error(f"conv {name}: inner_conv given, but it takes no inner conv ({[p.name for p in ps]})")
    args.update(kwargs)
    missing = [p for p in ps if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               and p.default is inspect.Parameter.empty and p.name not in args]
    if missing:
        key = missing[0].name
        key = f"conv_{key}" if key in GUIDE_OPTIONS else key
        raise _guide_error(
            f"conv {name}: constructor parameter(s) {', '.join(_fmt(p) for p in missing)} have no default and "
            f"gasgnn cannot choose them; {hint} (e.g. --guide-arg {key}=VALUE; a name the guide itself uses "
            f"takes a conv_ prefix)"
        )
    try:
        conv = cls(**args)
    except Exception as e:  # noqa: BLE001 (any constructor failure becomes one error type)
        raise _guide_error(
            f"conv {name}: {name}({', '.join(f'{k}={_short(v)}' for k, v in args.items())}) failed: "
            f"{type(e).__name__}: {e}. Its parameters: {[p.name for p in ps]}; {hint}"
        ) from None
    conv_out = _probe_width(conv, name, in_channels, x_args, conv_out)
    return PyGGuideConv(conv, in_channels, out_channels, conv_out, x_args)


def _required(ps: list[inspect.Parameter], key: str) -> bool:
    return any(p.name == key and p.default is inspect.Parameter.empty for p in ps)


def _short(v: Any) -> str:
    return type(v).__name__ if isinstance(v, nn.Module) else repr(v)


def _probe_width(conv: nn.Module, name: str, in_channels: int, x_args: tuple[str, ...], default: int) -> int:
    """Runs the conv once on a small graph (state restored afterwards) and returns its output width."""
    state = {k: v.clone() for k, v in conv.state_dict().items()}
    x = 1e-3 * torch.randn(6, in_channels, generator=torch.Generator().manual_seed(0))
    ei = torch.tensor([[0, 1, 2, 3, 4, 0, 1], [1, 2, 3, 4, 5, 2, 3]])
    try:
        out = conv(x, edge_index=ei, **{a: x for a in x_args})
    except Exception as e:  # noqa: BLE001
        raise _guide_error(f"conv {name}: fails on (x, edge_index): {type(e).__name__}: {e}") from None
    finally:
        conv.load_state_dict(state)
    if isinstance(out, tuple):
        out = out[0]
    if not isinstance(out, Tensor) or out.dim() != 2 or out.size(0) != x.size(0):
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise _guide_error(f"conv {name}: returned {shape} for {tuple(x.shape)} node features; "
                           "a guide needs one feature row per node")
    return int(out.size(1)) if out.size(1) else default


#: The largest ``max|alpha'| / max|alpha|`` a freshly built PyG-conv guide may give (see
#: :func:`check_guide_scale`).
MAX_INIT_RATIO = 5.0


def check_guide_scale(guide: nn.Module, alpha: Tensor, graph: Any, label: str,
                      max_ratio: float = MAX_INIT_RATIO) -> None:
    """Runs ``guide(alpha, graph)`` once (train mode, state restored) and raises
    :class:`~gasgnn.ggm.GuideError` when it fails or alpha' leaves alpha's scale.

    A conv that normalises its output (batch/layer norm), adds a constant or is misconfigured
    (propagation parameters such as ``K`` and ``alpha`` of APPNP) turns alpha (~1e-3) into O(1) or
    larger values: the search then starts from a near-one-hot alpha' it never chose. That is a silent
    failure, so it becomes an error naming the conv.

    Args:
        guide (nn.Module): The freshly built guide.
        alpha (Tensor): Alpha at initialisation.
        graph (Data): The ArchGraph.
        label (str): How the error names the conv.
        max_ratio (float, optional): Largest allowed ``max|alpha'| / max|alpha|``.
            (default: :obj:`MAX_INIT_RATIO`)
    """
    state = {k: v.clone() for k, v in guide.state_dict().items()}
    try:
        with torch.no_grad():
            out = guide(alpha, graph)
    except Exception as e:  # noqa: BLE001 (a guide that cannot run is one error type)
        if type(e).__name__ == "GuideError":
            raise
        raise _guide_error(f"guide with conv {label}: fails on the ArchGraph: {type(e).__name__}: {e}") from None
    finally:
        guide.load_state_dict(state)
    ratio = float(out.abs().max() / alpha.abs().max().clamp_min(1e-12))
    if not torch.isfinite(out).all() or ratio > max_ratio:
        raise _guide_error(
            f"guide with conv {label}: at initialisation max|alpha'| is {ratio:.3g}x max|alpha| (allowed "
            f"{max_ratio:g}x): the conv's output is not on alpha's scale (an output normalisation, a constant "
            f"term or a misread parameter). Pass options that keep it near its input (e.g. norm=None, "
            f"act=None) with guide_kwargs / --guide-arg KEY=VALUE, or a smaller gamma"
        )
