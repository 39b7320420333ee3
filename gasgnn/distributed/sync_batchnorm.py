"""Synchronised batch norm on any device (:class:`SyncBatchNorm`, :func:`convert_sync_batchnorm`).

:class:`torch.nn.SyncBatchNorm` runs on GPUs only; distributed CPU runs (gloo) use this one.
Re-exported from :mod:`gasgnn.distributed`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as tdist
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


def _active(group: Any = None) -> bool:
    """Whether ``group`` (default: the world) has more than one process. Kept free of
    :mod:`gasgnn.distributed`, which re-exports this module."""
    return tdist.is_available() and tdist.is_initialized() and tdist.get_world_size(group) > 1

__all__ = ["SyncBatchNorm", "all_reduce_sum", "convert_sync_batchnorm"]


class _AllReduceSum(torch.autograd.Function):
    """``all_reduce(SUM)`` with its gradient: the gradient of a sum over ranks is the sum of the
    ranks' upstream gradients."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, group: Any) -> Tensor:
        ctx.group = group
        y = x.clone()
        tdist.all_reduce(y, group=group)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        g = grad.contiguous().clone()
        tdist.all_reduce(g, group=ctx.group)
        return g, None


def all_reduce_sum(x: Tensor, group: Any = None) -> Tensor:
    """Differentiable sum over the ranks (identity in one process)."""
    if not _active(group):
        return x
    return _AllReduceSum.apply(x, group)


class SyncBatchNorm(_BatchNorm):
    r"""Batch norm whose training statistics are taken over the whole global batch, on any device.

    :class:`torch.nn.SyncBatchNorm` runs on GPUs only; this one works on the CPU with gloo (and
    anywhere else), at the cost of one small all-reduce per layer in the forward and backward passes.
    Each rank's mean and variance are gathered with their pixel counts and merged (the parallel
    variance formula, numerically stable), so ``W`` ranks with ``b`` images each normalise exactly as
    one process with ``W * b`` images. Outside training, or in one process, it is a plain batch norm.

    Args:
        num_features (int): Channels ``C``.
        eps (float, optional): (default: :obj:`1e-5`)
        momentum (float, optional): (default: :obj:`0.1`)
        affine (bool, optional): (default: :obj:`True`)
        track_running_stats (bool, optional): (default: :obj:`True`)
        process_group (ProcessGroup, optional): (default: the world)

    Shapes:
        - **input:** ``[N, C, *]``
        - **output:** ``[N, C, *]``
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group: Any = None, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype)
        self.process_group = process_group

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and _active(self.process_group)):
            return super().forward(x)
        self._check_input_dim(x)
        C = x.shape[1]
        dims = [0, *range(2, x.dim())]
        xf = x.float()
        var, mean = torch.var_mean(xf, dim=dims, unbiased=False)
        n = xf.new_full((1,), x.numel() // max(C, 1))
        W, r = tdist.get_world_size(self.process_group), tdist.get_rank(self.process_group)
        # Rank r fills row r; the sum over ranks is then the gathered [W, 2C+1] table (gloo has no
        # differentiable all-gather).
        onehot = torch.zeros(W, 1, dtype=xf.dtype, device=x.device)
        onehot[r] = 1.0
        table = all_reduce_sum(onehot * torch.cat([mean, var, n])[None], self.process_group)
        means, variances, counts = table[:, :C], table[:, C:2 * C], table[:, 2 * C:]
        total = counts.sum()
        g_mean = (counts * means).sum(0) / total
        g_var = (counts * (variances + (means - g_mean) ** 2)).sum(0) / total
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                f = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - f).add_(g_mean.detach().to(self.running_mean.dtype), alpha=f)
                unbiased = g_var.detach() * (total / (total - 1).clamp(min=1))
                self.running_var.mul_(1 - f).add_(unbiased.to(self.running_var.dtype), alpha=f)
        shape = [1, C] + [1] * (x.dim() - 2)
        y = (xf - g_mean.view(shape)) * torch.rsqrt(g_var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module, device: str | torch.device | None = None) -> nn.Module:
    """Replaces every batch norm of ``module`` by a synchronised one, keeping its parameters and buffers.

    On CUDA this is :meth:`torch.nn.SyncBatchNorm.convert_sync_batchnorm` (fused kernels); elsewhere
    :class:`SyncBatchNorm`. Convert before building optimisers (the parameters are kept, not copied).

    Args:
        module (nn.Module): The network.
        device (str or torch.device, optional): Where it runs. (default: the device of its first parameter)

    Returns:
        nn.Module: The converted module (``module`` itself unless it is a batch norm).
    """
    if device is None:
        p = next(iter(module.parameters()), None)
        device = p.device if p is not None else "cpu"
    if torch.device(device).type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert(module)


def _convert(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, _BatchNorm) and not isinstance(module, (SyncBatchNorm, nn.SyncBatchNorm)):
        out = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _convert(child))
    return out
