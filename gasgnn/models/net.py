"""GASNet: the derived, cell-heterogeneous network built from a :class:`Genotype`."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gasgnn.genotype import CellGenotype, Genotype, GenotypeError
from gasgnn.models.blocks import cell_preprocess
from gasgnn.models.heads import build_head
from gasgnn.models.pretrained import PretrainedMixin
from gasgnn.space import SearchSpace, Stem, build_op


class DerivedCell(nn.Module):
    """One derived cell: each intermediate node sums its kept ops; the output concatenates ``concat``.

    Args:
        cell (CellGenotype): The cell's genotype.
        C_pp (int): Channels of cell ``k-2``'s output.
        C_p (int): Channels of cell ``k-1``'s output.
        reduction_prev (bool): Whether cell ``k-1`` reduced the resolution.
    """

    def __init__(self, cell: CellGenotype, C_pp: int, C_p: int, reduction_prev: bool) -> None:
        super().__init__()
        self.genotype = cell
        C = cell.channels
        self.pre0, self.pre1 = cell_preprocess(C_pp, C_p, C, reduction_prev, affine=True)
        self.ops = nn.ModuleList(build_op(o, C, cell.stride(s), affine=True) for s, _, o in cell.edges)
        self.src = [s for s, _, _ in cell.edges]
        self.dst = [d for _, d, _ in cell.edges]
        self.out_channels = C * len(cell.concat)

    def forward(self, s0: Tensor, s1: Tensor) -> Tensor:
        states: dict[int, Tensor] = {0: self.pre0(s0), 1: self.pre1(s1)}
        for d in range(2, self.genotype.num_nodes + 2):
            states[d] = sum(op(states[s]) for op, s, dd in zip(self.ops, self.src, self.dst) if dd == d)
        return torch.cat([states[i] for i in self.genotype.concat], dim=1)


class GASNet(PretrainedMixin, nn.Module):
    """The derived network: stem, derived cells and a multi-scale head, upsampled to the input size.

    :meth:`save_pretrained` and :meth:`from_pretrained` share it as a directory (genotype, safetensors
    weights, config, model card; see :mod:`gasgnn.models.pretrained`).

    Args:
        genotype (Genotype): The derived architecture (one cell genotype per cell).
        space (SearchSpace, optional): Stem, classes and input settings; :obj:`None` uses
            ``genotype.space``, or the default space. (default: :obj:`None`)
        head (str, optional): Registered head: ``'aspp'``, ``'ppm'``, ``'simple'`` or a user's.
            (default: :obj:`"aspp"`)
        head_channels (int, optional): Head width. (default: :obj:`128`)
        aux_head (bool, optional): Adds an auxiliary classifier on the cell before the last reduction's
            stage end (returned in training mode as a second output). (default: :obj:`False`)
        **head_kwargs: Passed to the head (e.g. ``rates``, ``bins``).

    Shapes:
        - **input:** ``[N, in_channels, H, W]``
        - **output:** ``[N, num_classes, H, W]`` (and the auxiliary logits when ``aux_head`` and training)
    """

    def __init__(
        self, genotype: Genotype, space: SearchSpace | None = None, head: str = "aspp", head_channels: int = 128,
        aux_head: bool = False, **head_kwargs: Any,
    ) -> None:
        super().__init__()
        space = space or genotype.space or SearchSpace(num_cells=len(genotype))
        if len(genotype) != space.num_cells:
            raise GenotypeError(f"GASNet: genotype has {len(genotype)} cells but the space has {space.num_cells}")
        self.genotype, self.space, self.head_name = genotype, space, head
        # kept so that save_pretrained can rebuild exactly this network
        self.head_channels, self.head_kwargs = int(head_channels), dict(head_kwargs)
        self.stem = Stem(space.in_channels, space.stem_channels, num_convs=space.stem_stride.bit_length() - 1)
        C_pp = C_p = space.stem_channels
        cells, red_prev = [], False
        for cell in genotype.cells:
            cells.append(DerivedCell(cell, C_pp, C_p, red_prev))
            C_pp, C_p, red_prev = C_p, cells[-1].out_channels, cell.reduction
        self.cells = nn.ModuleList(cells)
        self.head = build_head(head, C_p, space.num_classes, channels=head_channels, **head_kwargs)
        self.aux_index = None
        if aux_head:
            # The auxiliary classifier sits on the last cell before the final stage (DARTS/PSPNet style).
            reds = [k for k, c in enumerate(genotype.cells) if c.reduction]
            self.aux_index = (reds[-1] - 1) if reds and reds[-1] > 0 else len(cells) // 2
            self.aux = build_head("simple", cells[self.aux_index].out_channels, space.num_classes)

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        size = x.shape[-2:]
        s0 = s1 = self.stem(x)
        aux = None
        for k, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if k == self.aux_index and self.training:
                aux = self.aux(s1)
        out = F.interpolate(self.head(s1), size=size, mode="bilinear", align_corners=False)
        if aux is not None:
            return out, F.interpolate(aux, size=size, mode="bilinear", align_corners=False)
        return out
