"""The op registry: every candidate operation of the search space, with its metadata.

One registry serves the supernet, the derived network, the latency table and the drawings. An op is
registered with a factory ``factory(C, stride, affine) -> nn.Module`` that maps ``[N, C, H, W]`` to
``[N, C, H/stride, W/stride]`` and with its metadata: light-weight, receptive field and dilation (the
analysis), the short label of the drawings, and optionally a batch factory (the node-batched supernet).
One decorator is everything an op needs; search with it by name (``SearchSpace(ops=...)``,
``gasgnn search --ops ...``; see ``docs/extending.md``).

Example::

    from gasgnn.space.ops import register_op, build_op

    @register_op("conv_5x5", receptive_field=5, label="conv5")
    def conv_5x5(C, stride, affine):
        return ReLUConvBN(C, C, 5, stride, 2, affine=affine)

    op = build_op("conv_5x5", C=16, stride=2)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gasgnn.registry import Registry, load_plugin

OpFactory = Callable[[int, int, bool], nn.Module]
BatchFactory = Callable[[int, int, bool, int], nn.Module]
"""``batch(C, stride, affine, n)``: the op on all ``n`` edges leaving one node at once (see :class:`OpSpec`)."""


class EdgeShared(nn.Sequential):
    """Marks a batched op whose output is the same on every edge leaving a node (a parameter-free op such
    as pooling or identity): the node-batched supernet computes it once per node, ``[N, C, H', W']``."""

    edge_shared = True


@dataclass(frozen=True)
class OpSpec:
    """A registered candidate operation.

    Args:
        name (str): The registry name.
        factory (callable): ``factory(C, stride, affine)`` building the module.
        light (bool): Whether the op is light-weight (none, pooling, skip in the supplement's grouping).
        receptive_field (int): The op's receptive field in input pixels (0 for ``none``).
        dilation (int): Dilation of its convolutions (1 if none).
        parametric (bool): Whether the op has learnable weights.
        batch (callable, optional): ``batch(C, stride, affine, n)`` building the op for all ``n`` edges
            that leave one node (the node-batched supernet, :mod:`gasgnn.models.batched`): a module
            mapping ``[N, C, H, W]`` to ``[N, n * C, H', W']`` whose channels ``m*C:(m+1)*C`` are edge
            ``m``'s output, or an :class:`EdgeShared` module mapping to ``[N, C, H', W']`` when every
            edge gives the same output. It may define ``load_edges(mods)`` to take the weights of ``n``
            per-edge modules. :obj:`None`: the op runs per edge. (default: :obj:`None`)
        label (str, optional): Short label on the drawings' arrows (``sep3``); :obj:`None` shows the
            name. (default: :obj:`None`)
    """

    name: str
    factory: OpFactory
    light: bool = False
    receptive_field: int = 3
    dilation: int = 1
    parametric: bool = True
    batch: BatchFactory | None = None
    label: str | None = None

    @property
    def large_rf(self) -> bool:
        """Whether the op has a large receptive field (dilation 4 or more, as in the supplement)."""
        return self.dilation >= 4

    @property
    def short_label(self) -> str:
        """The label of the drawings: :attr:`label`, else the name."""
        return self.label or self.name


#: Registered candidate operations by name (the one op registry).
OPS: Registry[OpSpec] = Registry("op")


def register_op(
    name: str,
    *,
    light: bool = False,
    receptive_field: int = 3,
    dilation: int = 1,
    parametric: bool = True,
    overwrite: bool = False,
    batch: BatchFactory | None = None,
    label: str | None = None,
) -> Callable[[OpFactory], OpFactory]:
    """Registers an op factory under ``name`` (use as a decorator).

    Args:
        name (str): The op's name in genotypes, latency tables and configs.
        light (bool, optional): Light-weight op. (default: :obj:`False`)
        receptive_field (int, optional): Receptive field in pixels. (default: :obj:`3`)
        dilation (int, optional): Dilation. (default: :obj:`1`)
        parametric (bool, optional): Has learnable weights. (default: :obj:`True`)
        overwrite (bool, optional): Replace an existing registration. (default: :obj:`False`)
        batch (callable, optional): How the op runs on all edges leaving a node at once (see
            :class:`OpSpec`); :obj:`None` runs it per edge. (default: :obj:`None`)
        label (str, optional): Short label on the drawings (``sep3``); :obj:`None` shows the name.
            (default: :obj:`None`)

    Returns:
        The decorator, which returns the factory unchanged.
    """
    if label is not None and (not isinstance(label, str) or not label.strip()):
        raise ValueError(f"register_op('{name}'): label must be a non-empty string, got {label!r}")

    def deco(factory: OpFactory) -> OpFactory:
        OPS.register(name, OpSpec(name, factory, light, receptive_field, dilation, parametric, batch, label),
                     overwrite=overwrite)
        return factory

    return deco


def register_batch(name: str) -> Callable[[BatchFactory], BatchFactory]:
    """Attaches a batch factory (see :class:`OpSpec`) to the already registered op ``name``
    (use as a decorator), so the node-batched supernet runs it on all edges of a node at once."""

    def deco(batch: BatchFactory) -> BatchFactory:
        spec = get_op(name)
        OPS.register(name, dataclasses.replace(spec, batch=batch), overwrite=True)
        return batch

    return deco


def get_op(name: str) -> OpSpec:
    """Returns the :class:`OpSpec` registered as ``name``, with a clear error listing known ops."""
    return OPS.get(name)


def resolve_ops(spec: str | Sequence[str], where: str = "ops") -> tuple[str, ...]:
    """Op names from a list such as ``'skip_connect,max_pool_3x3,my_ops.py:conv_5x5'``.

    An entry ``MODULE:NAME`` first imports ``MODULE`` (a dotted module name or a ``.py`` file, see
    :func:`gasgnn.registry.load_plugin`), whose top level registers the op ``NAME``; a plain ``NAME``
    must be registered already. Either way the result holds the plain names, in the given order.

    Args:
        spec (str or sequence of str): Comma-separated entries, or a sequence of them.
        where (str, optional): What the list is called in error messages (``'--ops'``). (default: ``'ops'``)

    Returns:
        tuple of str: the op names (the columns of alpha).

    Raises:
        ValueError: naming ``where`` and the entry (empty list, unknown op, duplicate, bad module).
    """
    items = spec.split(",") if isinstance(spec, str) else [str(s) for s in spec]
    names: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            raise ValueError(f"{where}: empty op name in {spec!r}")
        module, sep, name = item.rpartition(":")
        if sep:
            if not module or not name:
                raise ValueError(f"{where}: '{item}' must be NAME or MODULE:NAME")
            load_plugin(module)
            if name not in OPS:
                raise ValueError(f"{where}: '{module}' registers no op '{name}'; registered: {', '.join(OPS.names())}")
        elif name not in OPS:
            raise ValueError(f"{where}: unknown op '{name}'; registered: {', '.join(OPS.names())} (an op of your "
                             "own: MODULE:NAME, with MODULE a module or .py file that registers it)")
        if name in names:
            raise ValueError(f"{where}: '{name}' is listed twice")
        names.append(name)
    if not names:
        raise ValueError(f"{where}: no ops given")
    return tuple(names)


def build_op(name: str, C: int, stride: int = 1, affine: bool = True) -> nn.Module:
    """Builds the op ``name`` for ``C`` channels and the given stride.

    Args:
        name (str): Registered op name.
        C (int): Input and output channels.
        stride (int, optional): 1 or 2. (default: :obj:`1`)
        affine (bool, optional): Affine batch norm (the supernet uses :obj:`False`). (default: :obj:`True`)

    Returns:
        nn.Module: maps ``[N, C, H, W]`` to ``[N, C, ceil(H/stride), ceil(W/stride)]``.
    """
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride}")
    return get_op(name).factory(C, stride, affine)


# ----------------------------------------------------------------------------------------------
# Building blocks (also used by stems, cell pre-processing and heads).


class ReLUConvBN(nn.Sequential):
    """ReLU, convolution, batch norm (the DARTS conv unit)."""

    def __init__(
        self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, dilation: int = 1,
        affine: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel, stride, padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU, depthwise (dilated) convolution, pointwise convolution, batch norm."""

    def __init__(
        self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, dilation: int,
        affine: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel, stride, padding, dilation=dilation, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked depthwise-separable convolutions (the DARTS ``sep_conv``)."""

    def __init__(
        self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, affine: bool = True
    ) -> None:
        super().__init__(
            DilConv(C_in, C_in, kernel, stride, padding, 1, affine=affine),
            DilConv(C_in, C_out, kernel, 1, padding, 1, affine=affine),
        )


class Zero(nn.Module):
    """The ``none`` op: zeros of the output shape."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halves the resolution with two offset stride-2 1x1 convolutions (DARTS), padding odd sizes."""

    def __init__(self, C_in: int, C_out: int, affine: bool = True) -> None:
        super().__init__()
        if C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {C_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def branches(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The two stride-2 1x1 convolutions, offset by one pixel, before concatenation and batch norm."""
        x = self.relu(x)
        # Pad odd sizes so that both branches (offset by one pixel) give ceil(H/2) x ceil(W/2).
        H, W = x.shape[-2:]
        x = F.pad(x, (0, 1 + W % 2, 0, 1 + H % 2))
        a = self.conv_1(x[:, :, : H + H % 2, : W + W % 2])
        b = self.conv_2(x[:, :, 1 : H + H % 2 + 1, 1 : W + W % 2 + 1])
        return a, b

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(torch.cat(self.branches(x), dim=1))


class Stem(nn.Sequential):
    """Two stride-2 3x3 convolutions: image to 1/4 resolution (the GAS/CAS stem).

    Args:
        C_in (int): Image channels.
        C_out (int): Output channels.
        num_convs (int, optional): Stride-2 convolutions; the stem's stride is ``2**num_convs``.
            (default: :obj:`2`)
    """

    def __init__(self, C_in: int, C_out: int, num_convs: int = 2) -> None:
        layers: list[nn.Module] = []
        if num_convs == 0:  # stride 1: one plain conv so the output still has C_out channels
            layers = [nn.Conv2d(C_in, C_out, 3, 1, 1, bias=False), nn.BatchNorm2d(C_out)]
        c = C_in
        for i in range(num_convs):
            mid = C_out // 2 if i < num_convs - 1 else C_out
            layers += [nn.Conv2d(c, mid, 3, 2, 1, bias=False), nn.BatchNorm2d(mid)]
            if i < num_convs - 1:
                layers.append(nn.ReLU(inplace=True))
            c = mid
        super().__init__(*layers)


# ----------------------------------------------------------------------------------------------
# The eight GAS candidate ops.


@register_op("none", light=True, receptive_field=0, dilation=1, parametric=False, label="none")
def _none(C: int, stride: int, affine: bool) -> nn.Module:
    return Zero(stride)


@register_op("skip_connect", light=True, receptive_field=1, dilation=1, parametric=False, label="skip")
def _skip(C: int, stride: int, affine: bool) -> nn.Module:
    # A stride-2 skip needs a (cheap) learned reduction, as in DARTS.
    return nn.Identity() if stride == 1 else FactorizedReduce(C, C, affine=affine)


@register_op("max_pool_3x3", light=True, receptive_field=3, dilation=1, parametric=False, label="pool")
def _max_pool(C: int, stride: int, affine: bool) -> nn.Module:
    return nn.MaxPool2d(3, stride=stride, padding=1)


@register_op("conv_3x3", receptive_field=3, dilation=1, label="conv3")
def _conv(C: int, stride: int, affine: bool) -> nn.Module:
    return ReLUConvBN(C, C, 3, stride, 1, affine=affine)


@register_op("sep_conv_3x3", receptive_field=5, dilation=1, label="sep3")
def _sep_conv(C: int, stride: int, affine: bool) -> nn.Module:
    return SepConv(C, C, 3, stride, 1, affine=affine)


# ``dil_conv_3x3`` keeps its DARTS name (dilation 2) so that DARTS genotypes read as they are.
@register_op("dil_conv_3x3", receptive_field=5, dilation=2, label="dil2")
def _dil2(C: int, stride: int, affine: bool) -> nn.Module:
    return DilConv(C, C, 3, stride, 2, 2, affine=affine)


@register_op("dil_conv_3x3_d4", receptive_field=9, dilation=4, label="dil4")
def _dil4(C: int, stride: int, affine: bool) -> nn.Module:
    return DilConv(C, C, 3, stride, 4, 4, affine=affine)


@register_op("dil_conv_3x3_d8", receptive_field=17, dilation=8, label="dil8")
def _dil8(C: int, stride: int, affine: bool) -> nn.Module:
    return DilConv(C, C, 3, stride, 8, 8, affine=affine)


GAS_OPS: tuple[str, ...] = (
    "none",
    "skip_connect",
    "max_pool_3x3",
    "conv_3x3",
    "sep_conv_3x3",
    "dil_conv_3x3",
    "dil_conv_3x3_d4",
    "dil_conv_3x3_d8",
)
"""The default GAS candidate set, in the column order of alpha."""


# ----------------------------------------------------------------------------------------------
# The rest of the DARTS family: DARTS's own candidates and the NASNet/AmoebaNet ops, built as in
# DARTS's ``operations.py`` so that imported genotypes mean what their papers meant.


class Conv7x1x1x7(nn.Sequential):
    """ReLU, a 1x7 then a 7x1 convolution (the stride split between them), batch norm (NASNet)."""

    def __init__(self, C: int, stride: int, affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C, C, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
            nn.Conv2d(C, C, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
            nn.BatchNorm2d(C, affine=affine),
        )


@register_op("avg_pool_3x3", light=True, receptive_field=3, dilation=1, parametric=False, label="avg")
def _avg_pool(C: int, stride: int, affine: bool) -> nn.Module:
    # count_include_pad=False as in DARTS: border averages are not diluted by the zero padding.
    return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)


@register_op("sep_conv_5x5", receptive_field=9, dilation=1, label="sep5")
def _sep_conv_5(C: int, stride: int, affine: bool) -> nn.Module:
    return SepConv(C, C, 5, stride, 2, affine=affine)


@register_op("sep_conv_7x7", receptive_field=13, dilation=1, label="sep7")
def _sep_conv_7(C: int, stride: int, affine: bool) -> nn.Module:
    return SepConv(C, C, 7, stride, 3, affine=affine)


@register_op("dil_conv_5x5", receptive_field=9, dilation=2, label="dil2k5")
def _dil_conv_5(C: int, stride: int, affine: bool) -> nn.Module:
    return DilConv(C, C, 5, stride, 4, 2, affine=affine)


@register_op("conv_7x1_1x7", receptive_field=7, dilation=1, label="c7x1")
def _conv_7x1_1x7(C: int, stride: int, affine: bool) -> nn.Module:
    return Conv7x1x1x7(C, stride, affine=affine)


DARTS_OPS: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
"""DARTS's eight candidate ops (its ``PRIMITIVES``), in DARTS's order."""
