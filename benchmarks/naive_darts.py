"""A naive DARTS supernet over a gasgnn SearchSpace: the baseline of ``bench_search_step.py``.

Written independently of ``gasgnn.models.supernet`` in the style of DARTS' ``model_search.py``: a MixedOp
that runs every candidate op (``none`` included) on every edge and sums ``w * op(x)`` over a Python
list, a Cell and a Network, and a first-order search step whose architecture update back-propagates
into every weight as DARTS does. Only the op modules come from the one registry, so the arithmetic is
the same as gasgnn's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gasgnn.models import build_head
from gasgnn.space import FactorizedReduce, ReLUConvBN, SearchSpace, Stem, build_op, get_op


class MixedOp(nn.Module):
    def __init__(self, C: int, stride: int, ops: tuple[str, ...]) -> None:
        super().__init__()
        self._ops = nn.ModuleList()
        for name in ops:
            op = build_op(name, C, stride, affine=False)
            if "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
            self._ops.append(op)

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        return sum(w * op(x) for w, op in zip(weights, self._ops))


class Cell(nn.Module):
    def __init__(self, steps: int, C_pp: int, C_p: int, C: int, reduction: bool, reduction_prev: bool,
                 ops: tuple[str, ...]) -> None:
        super().__init__()
        self.reduction, self._steps = reduction, steps
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(C_pp, C, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(C_pp, C, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(C_p, C, 1, 1, 0, affine=False)
        self._ops = nn.ModuleList()
        for i in range(steps):
            for j in range(2 + i):
                self._ops.append(MixedOp(C, 2 if reduction and j < 2 else 1, ops))

    def forward(self, s0: Tensor, s1: Tensor, weights: Tensor) -> Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self._steps):
            s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-self._steps:], dim=1)


class Network(nn.Module):
    """Stem, ``space.num_cells`` independent cells (one alpha block each, as GAS), simple head."""

    def __init__(self, space: SearchSpace, head_channels: int = 64) -> None:
        super().__init__()
        assert all(get_op(o) for o in space.ops)
        self.space = space
        self.stem = Stem(space.in_channels, space.stem_channels, num_convs=space.stem_stride.bit_length() - 1)
        C_pp = C_p = space.stem_channels
        self.cells = nn.ModuleList()
        red_prev = False
        for k, C in enumerate(space.cell_channels()):
            red = space.is_reduction(k)
            self.cells.append(Cell(space.num_nodes, C_pp, C_p, C, red, red_prev, tuple(space.ops)))
            C_pp, C_p, red_prev = C_p, space.num_nodes * C, red
        self.head = build_head("simple", C_p, space.num_classes, channels=head_channels)
        self.alphas = nn.Parameter(1e-3 * torch.randn(space.num_arch_nodes, space.num_ops))

    def forward(self, x: Tensor) -> Tensor:
        weights = F.softmax(self.alphas, dim=-1)
        E = self.space.edges_per_cell
        s0 = s1 = self.stem(x)
        for k, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, weights[k * E:(k + 1) * E])
        return F.interpolate(self.head(s1), size=x.shape[-2:], mode="bilinear", align_corners=False)

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alphas]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if n != "alphas"]


class NaiveSearcher:
    """First-order DARTS: Adam on alpha (full backward, as DARTS' ``architect.step`` with
    ``unrolled=False``), then SGD on the weights with gradient clipping."""

    def __init__(self, space: SearchSpace, device: str | torch.device = "cpu", amp: bool = False) -> None:
        self.device = torch.device(device)
        self.amp = amp and self.device.type == "cuda"  # bf16 autocast, as gasgnn's --amp
        self.net = Network(space).to(device)
        self.w_opt = torch.optim.SGD(self.net.weight_parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
        self.a_opt = torch.optim.Adam(self.net.arch_parameters(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)

    def step(self, batch_w: tuple[Tensor, Tensor], batch_a: tuple[Tensor, Tensor], tau: float = 1.0) -> float:
        self.net.train()
        xa, ya = batch_a
        self.a_opt.zero_grad()
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.amp):
            logits = self.net(xa)
        F.cross_entropy(logits.float(), ya, ignore_index=255).backward()
        self.a_opt.step()
        xw, yw = batch_w
        self.w_opt.zero_grad()
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.amp):
            logits = self.net(xw)
        loss = F.cross_entropy(logits.float(), yw, ignore_index=255)
        loss.backward()
        nn.utils.clip_grad_norm_(self.net.weight_parameters(), 5.0)
        self.w_opt.step()
        return float(loss.detach())
