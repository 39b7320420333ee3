"""Pieces of the search loop around the guide: the one relaxed distribution per step, the guide's
diagnostics, the optimiser's parameter groups and the adaptive latency weight's settings.

Kept out of :mod:`gasgnn.search` so that the loop stays short; :class:`~gasgnn.search.Searcher` uses them.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from gasgnn.ggm import attention_entropy
from gasgnn.ggm import guide_diagnostics as _guide_diagnostics
from gasgnn.latency import AdaptiveLatencyWeight

__all__ = [
    "adaptive_weight",
    "attention_entropy",
    "arch_param_groups",
    "guide_diagnostics",
    "relaxed_logits",
]


def relaxed_logits(alpha_p: Tensor, tau: float, relaxation: str = "softmax") -> Tensor:
    r"""Logits whose softmax is the step's op weights: :math:`\alpha'/\tau`, or :math:`(\alpha' + g)/\tau`
    with Gumbel noise :math:`g` (one sample).

    The supernet forward takes ``softmax(logits)`` and the latency term the same ``logits`` (its LUT
    applies the softmax itself, renormalised without ``none`` when asked), so both see one distribution.

    Args:
        alpha_p (Tensor): alpha' ``[N, K]``.
        tau (float): Temperature, > 0.
        relaxation (str, optional): ``'softmax'`` or ``'gumbel'``. (default: :obj:`"softmax"`)

    Returns:
        Tensor: ``[N, K]`` logits.
    """
    if relaxation == "gumbel":
        # As F.gumbel_softmax: g = -log(Exponential(1)); softmax((alpha' + g) / tau) is its soft sample.
        g = -torch.empty_like(alpha_p).exponential_().log()
        return (alpha_p + g) / tau
    return alpha_p / tau


def guide_diagnostics(guide: nn.Module, alpha: Tensor, alpha_p: Tensor) -> dict[str, float]:
    """The guide's per-epoch diagnostics (:data:`gasgnn.ggm.DIAGNOSTICS`: ``guide_attention_entropy``,
    ``guide_distinct_sources``, ``guide_update_ratio``): the guide's own ``diagnostics`` method
    (:meth:`gasgnn.ggm.Guide.diagnostics`), or the same numbers for any other module.

    Args:
        guide (nn.Module): The guide that computed ``alpha_p`` from ``alpha`` last.
        alpha (Tensor): alpha.
        alpha_p (Tensor): alpha'.
    """
    return _guide_diagnostics(guide, alpha, alpha_p)


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


def adaptive_weight(target_fps: tuple[float, float] | None, init: float, factor: float) -> AdaptiveLatencyWeight | None:
    """The :class:`AdaptiveLatencyWeight` of a search with an FPS window (or :obj:`None` without one)."""
    if target_fps is None:
        return None
    lo, hi = (float(v) for v in target_fps)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"SearchConfig.adaptive_fps: finite (lo, hi) needed, got {target_fps}")
    return AdaptiveLatencyWeight((lo, hi), factor=factor, init=init)
