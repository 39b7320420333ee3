"""Segmentation heads, registered by name: ``simple`` (the supernet's), ``aspp`` and ``ppm``.

A head maps the last cell's features ``[N, C_in, h, w]`` to class logits ``[N, num_classes, h, w]``;
the network upsamples them to the input size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gasgnn.registry import Registry

HeadFactory = Callable[..., nn.Module]
#: Registered heads by name.
HEADS: Registry[HeadFactory] = Registry("head")


def register_head(name: str, overwrite: bool = False) -> Callable[[HeadFactory], HeadFactory]:
    """Registers ``factory(in_channels, num_classes, **kwargs) -> nn.Module`` as head ``name``.

    Args:
        name (str): The head's name (``--head NAME``).
        overwrite (bool, optional): Replace an existing head. (default: :obj:`False`)
    """
    return HEADS.register(name, overwrite=overwrite)


def build_head(name: str, in_channels: int, num_classes: int, **kwargs) -> nn.Module:
    """Builds the registered head ``name``.

    Args:
        name (str): ``'simple'``, ``'aspp'``, ``'ppm'`` or a user-registered name.
        in_channels (int): Feature channels.
        num_classes (int): Output classes.
        **kwargs: Head options (e.g. ``channels``, ``rates``, ``bins``).
    """
    return HEADS.build(name, in_channels, num_classes, **kwargs)


def _cbr(C_in: int, C_out: int, k: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (k // 2)
    return nn.Sequential(
        nn.Conv2d(C_in, C_out, k, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(C_out),
        nn.ReLU(inplace=True),
    )


def _pooled(C_in: int, C_out: int, bins: int) -> nn.Sequential:
    # No batch norm on pooled maps: a 1x1 map with batch 1 has one value per channel.
    return nn.Sequential(nn.AdaptiveAvgPool2d(bins), nn.Conv2d(C_in, C_out, 1), nn.ReLU(inplace=True))


@register_head("simple")
class SimpleHead(nn.Module):
    """1x1 conv-BN-ReLU then a 1x1 classifier (the supernet's head during search).

    Args:
        in_channels (int): Feature channels.
        num_classes (int): Output classes.
        channels (int, optional): Hidden channels. (default: :obj:`64`)
    """

    def __init__(self, in_channels: int, num_classes: int, channels: int = 64) -> None:
        super().__init__()
        self.block = _cbr(in_channels, channels)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.block(x))


@register_head("aspp")
class ASPPHead(nn.Module):
    """Atrous spatial pyramid pooling (DeepLabv3): a 1x1 branch, dilated 3x3 branches and image pooling.

    Args:
        in_channels (int): Feature channels.
        num_classes (int): Output classes.
        channels (int, optional): Channels per branch. (default: :obj:`128`)
        rates (sequence of int, optional): Dilations of the 3x3 branches; smaller than DeepLab's
            (6, 12, 18) because real-time inputs give small stride-16 maps. (default: :obj:`(2, 4, 6)`)
        dropout (float, optional): Dropout before the classifier. (default: :obj:`0.1`)
    """

    def __init__(
        self, in_channels: int, num_classes: int, channels: int = 128, rates: Sequence[int] = (2, 4, 6),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList([_cbr(in_channels, channels)])
        self.branches.extend(_cbr(in_channels, channels, 3, r) for r in rates)
        self.pool = _pooled(in_channels, channels, 1)
        self.project = _cbr(channels * (len(rates) + 2), channels)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        feats = [b(x) for b in self.branches]
        feats.append(self.pool(x).expand(-1, -1, *size))
        return self.classifier(self.dropout(self.project(torch.cat(feats, dim=1))))


@register_head("ppm")
class PPMHead(nn.Module):
    """Pyramid pooling module (PSPNet): pooled context at several bin sizes, fused with the features.

    Args:
        in_channels (int): Feature channels.
        num_classes (int): Output classes.
        channels (int, optional): Channels of the fused features. (default: :obj:`128`)
        bins (sequence of int, optional): Pooling grid sizes. (default: :obj:`(1, 2, 3, 6)`)
        dropout (float, optional): Dropout before the classifier. (default: :obj:`0.1`)
    """

    def __init__(
        self, in_channels: int, num_classes: int, channels: int = 128, bins: Sequence[int] = (1, 2, 3, 6),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        branch = max(channels // len(bins), 8)
        self.bins = tuple(bins)
        self.stages = nn.ModuleList(_pooled(in_channels, branch, b) for b in self.bins)
        self.bottleneck = _cbr(in_channels + branch * len(self.bins), channels, 3)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        feats = [x] + [F.interpolate(s(x), size=size, mode="bilinear", align_corners=False) for s in self.stages]
        return self.classifier(self.dropout(self.bottleneck(torch.cat(feats, dim=1))))
