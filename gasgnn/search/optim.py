"""The optimisation machinery of a search: the two optimisers and their groups, the adaptive latency
weight, the AMP gradient scalers, the frozen weights of the lean architecture step and the compiled
supernet forward."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from gasgnn.latency import AdaptiveLatencyWeight
from gasgnn.search.config import SearchConfig

__all__ = ["SearchOptim", "arch_param_groups", "compiled_forward", "frozen"]


@contextmanager
def frozen(params: list[Tensor]) -> Iterator[None]:
    """``requires_grad_(False)`` on ``params`` inside the block (the lean architecture step: autograd then
    neither computes their gradients nor keeps activations only they need)."""
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)


def compiled_forward(net: nn.Module, cfg: SearchConfig, device: torch.device) -> nn.Module:
    """The supernet as the steps call it: with ``cuda_graphs``, compiled with CUDA graphs (CUDA only; the
    fused mixed ops are custom operators, so it is one graph per step kind)."""
    if device.type == "cuda" and not cfg.deterministic:
        torch.backends.cudnn.benchmark = True  # static shapes: pick the fastest conv algorithms once
    if not cfg.cuda_graphs:
        return net
    if device.type != "cuda":
        raise ValueError(f"SearchConfig.cuda_graphs: needs a CUDA device, got {device}")
    return torch.compile(net, mode="reduce-overhead", dynamic=False)


def arch_param_groups(alpha_params: list[nn.Parameter], guide: nn.Module, weight_decay: float,
                      guide_weight_decay: float) -> list[dict[str, Any]]:
    """Adam parameter groups: alpha with ``weight_decay``, the guide with ``guide_weight_decay``.

    Why two: the guide's gradients are tiny at the start of a search (alpha is ~1e-3), and a weight
    decay meant for alpha shrinks phi and phi' faster than they learn (docs/ggm.md).
    """
    groups: list[dict[str, Any]] = [{"params": list(alpha_params), "weight_decay": weight_decay, "name": "alpha"}]
    gp = [p for p in guide.parameters() if p.requires_grad]
    if gp:
        groups.append({"params": gp, "weight_decay": guide_weight_decay, "name": "guide"})
    return groups


@dataclass
class SearchOptim:
    """The optimisers of a search (built by :meth:`build`).

    Args:
        w_opt (Optimizer): SGD of the supernet weights.
        w_sched (CosineAnnealingLR): Its cosine schedule (one step per epoch).
        a_opt (Optimizer): Adam of alpha and the guide.
        a_scaler (GradScaler): Loss scaling of the architecture step (fp16 AMP only).
        w_scaler (GradScaler): Loss scaling of the weight step (fp16 AMP only).
        adaptive (AdaptiveLatencyWeight, optional): The adaptive lambda of an FPS window.
        amp_dtype (torch.dtype): bf16 where the GPU supports it, else fp16.
        use_amp (bool): Whether the steps run under autocast (CUDA and ``amp``).
    """

    w_opt: torch.optim.Optimizer
    w_sched: torch.optim.lr_scheduler.CosineAnnealingLR
    a_opt: torch.optim.Optimizer
    a_scaler: torch.amp.GradScaler
    w_scaler: torch.amp.GradScaler
    adaptive: AdaptiveLatencyWeight | None
    amp_dtype: torch.dtype
    use_amp: bool

    @classmethod
    def build(cls, net: Any, guide: nn.Module, cfg: SearchConfig, device: torch.device) -> SearchOptim:
        """The optimisers of ``net`` (a :class:`~gasgnn.models.Supernet`) and ``guide`` under ``cfg``."""
        w_opt = torch.optim.SGD(net.weight_parameters(), lr=cfg.w_lr, momentum=cfg.w_momentum,
                                weight_decay=cfg.w_weight_decay)
        w_sched = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, cfg.epochs, eta_min=cfg.w_lr_min)
        a_opt = torch.optim.Adam(arch_param_groups(list(net.arch_parameters()), guide, cfg.a_weight_decay,
                                                   cfg.guide_weight_decay), lr=cfg.a_lr, betas=(0.5, 0.999))
        adaptive = None if cfg.adaptive_fps is None else AdaptiveLatencyWeight(
            cfg.adaptive_fps, factor=cfg.adaptive_factor, init=cfg.latency_weight)
        use_amp = cfg.amp and device.type == "cuda"
        # bf16 needs no loss scaling (and so no host sync in the scaler); fp16 does.
        amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
        scale = use_amp and amp_dtype == torch.float16
        # One scaler per optimiser: the two losses have different scales.
        return cls(w_opt, w_sched, a_opt, torch.amp.GradScaler("cuda", enabled=scale),
                   torch.amp.GradScaler("cuda", enabled=scale), adaptive, amp_dtype, use_amp)
