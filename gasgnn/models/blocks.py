"""Blocks shared by the supernet and the derived network: a cell's input pre-processing."""

from __future__ import annotations

from torch import nn

from gasgnn.space import FactorizedReduce, ReLUConvBN

__all__ = ["cell_preprocess"]


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
