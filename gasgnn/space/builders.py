"""ArchGraph relation builders: which op slots exchange architecture information.

A builder maps a :class:`~gasgnn.space.SearchSpace` to the ``edge_index`` of its ArchGraph. The space's
``arch_graph()``, the graph-guided module and the drawings all look builders up in :data:`BUILDERS`;
:func:`register_builder` adds one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch
from torch import Tensor

from gasgnn.registry import Registry

__all__ = ["BUILDERS", "SpaceShape", "register_builder", "build_edge_index", "adjacent", "aligned", "all_previous"]


class SpaceShape(Protocol):
    """What a builder reads of a :class:`~gasgnn.space.SearchSpace` (so this module needs no import of it)."""

    num_cells: int
    edges_per_cell: int


# ------------------------------------------------------------------------------------------------
# ArchGraph relation builders: which op slots exchange architecture information.

BuilderFn = Callable[..., Tensor]
#: Registered ArchGraph relation builders by name.
BUILDERS: Registry[BuilderFn] = Registry("ArchGraph builder")


def register_builder(name: str, overwrite: bool = False) -> Callable[[BuilderFn], BuilderFn]:
    """Registers ``fn(space, **kwargs) -> edge_index [2, R]`` as the ArchGraph relation ``name``.

    Edges follow PyG's convention: ``edge_index[0]`` is the source (a node of an earlier cell),
    ``edge_index[1]`` the target, so messages flow forward through the network.
    """

    return BUILDERS.register(name, overwrite=overwrite)


def build_edge_index(name: str, space: SpaceShape, **kwargs: Any) -> Tensor:
    """Runs the builder ``name`` on ``space``.

    Returns:
        Tensor: ``edge_index`` of shape ``[2, R]`` (long).
    """
    return BUILDERS.build(name, space, **kwargs)


def _cell_pairs(space: SpaceShape, pairs: Sequence[tuple[int, int]], aligned: bool) -> Tensor:
    E = space.edges_per_cell
    ar = torch.arange(E)
    parts = []
    for ks, kt in pairs:
        if aligned:
            parts.append(torch.stack([ks * E + ar, kt * E + ar]))
        else:
            src = (ks * E + ar).repeat_interleave(E)
            dst = (kt * E + ar).repeat(E)
            parts.append(torch.stack([src, dst]))
    if not parts:
        return torch.empty(2, 0, dtype=torch.long)
    return torch.cat(parts, dim=1)


@register_builder("adjacent")
def adjacent(space: SpaceShape) -> Tensor:
    """Every op slot of cell ``k-1`` to every op slot of cell ``k`` (the GAS default): ``(L-1) E^2`` edges."""
    return _cell_pairs(space, [(k - 1, k) for k in range(1, space.num_cells)], aligned=False)


@register_builder("aligned")
def aligned(space: SpaceShape) -> Tensor:
    """Op slot ``e`` of cell ``k-1`` to op slot ``e`` of cell ``k`` only: ``(L-1) E`` edges."""
    return _cell_pairs(space, [(k - 1, k) for k in range(1, space.num_cells)], aligned=True)


@register_builder("all_previous")
def all_previous(space: SpaceShape) -> Tensor:
    """Every op slot of every earlier cell ``j < k`` to every op slot of cell ``k``."""
    pairs = [(j, k) for k in range(1, space.num_cells) for j in range(k)]
    return _cell_pairs(space, pairs, aligned=False)
