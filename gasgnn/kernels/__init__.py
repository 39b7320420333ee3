"""Fused mixed ops, the supernet's hot path: backend dispatch (:mod:`~gasgnn.kernels.dispatch`), the
plain-PyTorch reference (:mod:`~gasgnn.kernels.reference`) and the Triton kernels
(:mod:`~gasgnn.kernels.triton_kernels`, imported lazily: the package works without Triton)."""

from gasgnn.kernels.dispatch import (
    BACKENDS,
    ENV_VAR,
    edge_mix,
    get_backend,
    mixed_sum,
    resolve_backend,
    set_backend,
    triton_available,
    use_backend,
)
from gasgnn.kernels.reference import edge_mix_reference, mixed_sum_reference

__all__ = [
    "BACKENDS",
    "ENV_VAR",
    "edge_mix",
    "edge_mix_reference",
    "get_backend",
    "mixed_sum",
    "mixed_sum_reference",
    "resolve_backend",
    "set_backend",
    "triton_available",
    "use_backend",
]
