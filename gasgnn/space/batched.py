"""Edge-batched versions of the GAS candidate ops: one op for all ``n`` edges leaving a node.

An edge-batched op maps a node's output ``[N, C, H, W]`` to ``[N, n * C, H', W']`` with edge ``m`` in
channels ``m*C:(m+1)*C`` ("edge-major"): a 3x3 conv ``C -> n*C``; a depthwise conv with channel
multiplier ``n`` then a pointwise conv grouped by edge; FactorizedReduce with its two 1x1 convs widened.
Batch norm is per channel, so one ``BatchNorm2d(n * C)`` is exactly ``n`` per-edge ones. Pooling and the
identity give the same output on every edge: they are :class:`~gasgnn.space.ops.EdgeShared` and run once.

Importing this module attaches the batch factories to the registry (:func:`gasgnn.space.ops.register_batch`).
Every module here has ``load_edges(mods)``, which takes the weights of ``n`` per-edge modules built by
the op's ordinary factory (how the tests prove both paths compute the same function).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gasgnn.space.ops import EdgeShared, FactorizedReduce, register_batch


@torch.no_grad()
def load_bn(bn: nn.BatchNorm2d, bns: Sequence[nn.BatchNorm2d]) -> None:
    """Copies the parameters and running statistics of ``n`` per-edge batch norms into one of ``n * C`` channels."""
    for name in ("weight", "bias", "running_mean", "running_var"):
        if getattr(bn, name) is not None:
            getattr(bn, name).copy_(torch.cat([getattr(b, name) for b in bns]))
    bn.num_batches_tracked.copy_(bns[0].num_batches_tracked)


class EdgeMajor(nn.Module):
    """Reorders the output of a depthwise conv with channel multiplier ``n`` (channel-major,
    ``c * n + m``) to edge-major (``m * C + c``)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def forward(self, x: Tensor) -> Tensor:
        N, nC, H, W = x.shape
        return x.view(N, nC // self.n, self.n, H, W).transpose(1, 2).reshape(N, nC, H, W)


class BatchedReLUConvBN(nn.Sequential):
    """``n`` :class:`~gasgnn.space.ops.ReLUConvBN` (``C -> C``) on one input as one ``C -> n*C`` conv."""

    def __init__(self, C: int, kernel: int, stride: int, padding: int, n: int, affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C, n * C, kernel, stride, padding, bias=False),
            nn.BatchNorm2d(n * C, affine=affine),
        )

    @torch.no_grad()
    def load_edges(self, mods: Sequence[nn.Module]) -> None:
        self[1].weight.copy_(torch.cat([m[1].weight for m in mods]))
        load_bn(self[2], [m[2] for m in mods])


class BatchedDilConv(nn.Sequential):
    """``n`` :class:`~gasgnn.space.ops.DilConv` as one depthwise conv over the ``n`` copies plus a pointwise
    conv grouped by edge.

    Args:
        wide (bool): The input is already edge-major ``[N, n*C]`` (the second half of a SepConv), so the
            depthwise conv is plain (``groups = n*C``); otherwise it reads the shared ``[N, C]`` input
            with channel multiplier ``n``.
    """

    def __init__(
        self, C: int, kernel: int, stride: int, padding: int, dilation: int, n: int, affine: bool = True,
        wide: bool = False,
    ) -> None:
        C_in = n * C if wide else C
        dw = nn.Conv2d(C_in, n * C, kernel, stride, padding, dilation=dilation, groups=C_in, bias=False)
        super().__init__(
            nn.ReLU(inplace=False), dw, nn.Identity() if wide or n == 1 else EdgeMajor(n),
            nn.Conv2d(n * C, n * C, 1, groups=n, bias=False), nn.BatchNorm2d(n * C, affine=affine),
        )
        self.n, self.wide = n, wide

    @torch.no_grad()
    def load_edges(self, mods: Sequence[nn.Module]) -> None:
        dws = [m[1].weight for m in mods]  # each [C, 1, k, k]
        # channel multiplier layout: output c * n + m is filter m of input channel c
        self[1].weight.copy_(torch.cat(dws) if self.wide else torch.stack(dws, 1).flatten(0, 1))
        self[3].weight.copy_(torch.cat([m[2].weight for m in mods]))
        load_bn(self[4], [m[3] for m in mods])


class BatchedSepConv(nn.Sequential):
    """``n`` :class:`~gasgnn.space.ops.SepConv`: a batched DilConv reading the node, then a wide one."""

    def __init__(self, C: int, kernel: int, stride: int, padding: int, n: int, affine: bool = True) -> None:
        super().__init__(
            BatchedDilConv(C, kernel, stride, padding, 1, n, affine),
            BatchedDilConv(C, kernel, 1, padding, 1, n, affine, wide=True),
        )

    def load_edges(self, mods: Sequence[nn.Module]) -> None:
        self[0].load_edges([m[0] for m in mods])
        self[1].load_edges([m[1] for m in mods])


class BatchedFactorizedReduce(FactorizedReduce):
    """``n`` :class:`~gasgnn.space.ops.FactorizedReduce` (``C -> C``, the stride-2 skip) with both 1x1 convs
    widened to ``C -> n*C/2``; the halves are interleaved back per edge."""

    def __init__(self, C: int, n: int, affine: bool = True) -> None:
        super().__init__(C, n * C, affine=affine)
        self.n = n

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.branches(x)
        N, _, h, w = a.shape
        y = torch.cat([a.view(N, self.n, -1, h, w), b.view(N, self.n, -1, h, w)], dim=2)
        return self.bn(y.view(N, -1, h, w))

    @torch.no_grad()
    def load_edges(self, mods: Sequence[nn.Module]) -> None:
        self.conv_1.weight.copy_(torch.cat([m.conv_1.weight for m in mods]))
        self.conv_2.weight.copy_(torch.cat([m.conv_2.weight for m in mods]))
        load_bn(self.bn, [m.bn for m in mods])


@register_batch("skip_connect")
def _skip(C: int, stride: int, affine: bool, n: int) -> nn.Module:
    return EdgeShared(nn.Identity()) if stride == 1 else BatchedFactorizedReduce(C, n, affine)


@register_batch("max_pool_3x3")
def _max_pool(C: int, stride: int, affine: bool, n: int) -> nn.Module:
    return EdgeShared(nn.MaxPool2d(3, stride=stride, padding=1))


@register_batch("conv_3x3")
def _conv(C: int, stride: int, affine: bool, n: int) -> nn.Module:
    return BatchedReLUConvBN(C, 3, stride, 1, n, affine)


@register_batch("sep_conv_3x3")
def _sep_conv(C: int, stride: int, affine: bool, n: int) -> nn.Module:
    return BatchedSepConv(C, 3, stride, 1, n, affine)


def _dil(d: int):
    def batch(C: int, stride: int, affine: bool, n: int) -> nn.Module:
        return BatchedDilConv(C, 3, stride, d, d, n, affine)

    return batch


for _name, _d in (("dil_conv_3x3", 2), ("dil_conv_3x3_d4", 4), ("dil_conv_3x3_d8", 8)):
    register_batch(_name)(_dil(_d))
