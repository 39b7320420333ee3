"""Blocks shared by the supernets (per-edge and node-batched) and the derived network: a cell's input
pre-processing, the memory options, and helpers of the mixed ops."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from gasgnn.space import FactorizedReduce, ReLUConvBN, SpaceError

__all__ = ["MemoryOptions", "cell_preprocess", "channel_shuffle", "keep_bn_stats", "strip_leading_relu"]


def cell_preprocess(
    C_pp: int, C_p: int, C: int, reduction_prev: bool, affine: bool = True
) -> tuple[nn.Module, nn.Module]:
    """The two input adapters of a cell (DARTS): bring cells ``k-2`` and ``k-1`` to ``C`` channels and one
    resolution (``k-2`` is one reduction behind when cell ``k-1`` reduced)."""
    if reduction_prev:
        pre0: nn.Module = FactorizedReduce(C_pp, C, affine=affine)
    else:
        pre0 = ReLUConvBN(C_pp, C, 1, 1, 0, affine=affine)
    return pre0, ReLUConvBN(C_p, C, 1, 1, 0, affine=affine)


@dataclass(frozen=True)
class MemoryOptions:
    """Memory-saving options of the supernet's mixed ops.

    Args:
        checkpoint (bool, optional): Recompute every mixed op's internals in the backward pass
            (``torch.utils.checkpoint``, non-reentrant) instead of storing them; only the edge input is
            kept. Same outputs and gradients; roughly one more forward of the cells per step.
            (default: :obj:`False`)
        partial_channels (int, optional): ``k`` of PC-DARTS: only ``C/k`` channels of the edge input go
            through the candidate ops; the others bypass them (max-pooled on stride-2 edges) and the
            result is channel-shuffled. ``1`` is the plain mixed op; other values change the function.
            (default: :obj:`1`)
        shared_relu (bool, optional): Compute ``relu(x)`` once per edge and feed it to every op that
            starts with a ReLU (their leading ``nn.ReLU`` is replaced by ``nn.Identity``, so parameter
            names do not change). Same function. (default: :obj:`False`)
    """

    checkpoint: bool = False
    partial_channels: int = 1
    shared_relu: bool = False

    def __post_init__(self) -> None:
        for name in ("checkpoint", "shared_relu"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"MemoryOptions.{name}: must be a bool, got {getattr(self, name)!r}")
        k = self.partial_channels
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"MemoryOptions.partial_channels: must be an integer >= 1, got {k!r}")

    @classmethod
    def coerce(cls, value: MemoryOptions | Mapping[str, Any] | None) -> MemoryOptions:
        """Turns :obj:`None`, a mapping (e.g. from a JSON config) or an instance into an instance."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {f.name for f in fields(cls)}
            if unknown:
                raise ValueError(f"MemoryOptions: unknown option(s) {sorted(unknown)}")
            return cls(**value)
        raise TypeError(f"memory: expected MemoryOptions, a mapping or None, got {type(value).__name__}")

    def check_channels(self, C: int, stride: int, ops: Sequence[str], where: str = "MixedOp") -> None:
        """Raises :class:`SpaceError` if ``partial_channels`` does not fit an edge of ``C`` channels."""
        k = self.partial_channels
        if C % k:
            raise SpaceError(
                f"MemoryOptions.partial_channels: {k} does not divide the {C} channels of {where}"
            )
        if stride == 2 and "skip_connect" in ops and (C // k) % 2:
            raise SpaceError(
                f"MemoryOptions.partial_channels: {where} passes {C // k} = {C}/{k} channels through a "
                "stride-2 skip_connect, which needs an even number"
            )


def strip_leading_relu(op: nn.Module) -> bool:
    """Replaces the ReLU an op applies first to its input by ``nn.Identity``; returns whether it did."""
    if isinstance(op, FactorizedReduce):
        if isinstance(op.relu, nn.ReLU):  # its forward starts with self.relu (padding commutes with it)
            op.relu = nn.Identity()
            return True
        return False
    if isinstance(op, nn.Sequential) and len(op) > 0:
        if isinstance(op[0], nn.ReLU):
            op[0] = nn.Identity()
            return True
        return strip_leading_relu(op[0])
    return False


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleaves ``groups`` channel groups (ShuffleNet), so channel ``i`` of group ``g`` lands at
    ``i * groups + g``."""
    N, C, H, W = x.shape
    return x.view(N, groups, C // groups, H, W).transpose(1, 2).reshape(N, C, H, W)


@contextmanager
def keep_bn_stats(modules: Sequence[nn.Module]) -> Iterator[None]:
    """Restores batch-norm running statistics on exit: the checkpoint recomputation must not count
    the batch a second time."""
    saved = [
        (b, b.clone())
        for m in modules
        if isinstance(m, _BatchNorm)
        for b in (m.running_mean, m.running_var, m.num_batches_tracked)
        if b is not None
    ]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, v in saved:
                b.copy_(v)
