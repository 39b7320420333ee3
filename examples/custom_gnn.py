"""Plug your own GNN into the graph-guided module and run a few search steps.

Defines a custom PyG MessagePassing conv (a gated mean of the previous cell's alpha rows), uses it as
the GAS guide on a tiny search space with random images, and prints how alpha' moves away from alpha.
Runs in a few seconds on a CPU:

    python examples/custom_gnn.py
    python examples/custom_gnn.py --builder cells --steps 5

The same conv is reachable from other code, and from the planned ``gasgnn search --guide`` flag, by its
import path ``custom_gnn:GatedMeanConv`` when this directory is on ``sys.path``.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from gasgnn import SearchSpace, Supernet
from gasgnn.ggm import build_guide


class GatedMeanConv(MessagePassing):
    r"""Mean of the source rows, each gated by a learned sigmoid of (target, source).

    .. math::
        \mathbf{x}'_i = \frac{1}{|\mathcal{N}(i)|} \sum_{j \in \mathcal{N}(i)}
        \sigma\left(\mathbf{a}^{\top} [\mathbf{x}_i \,\|\, \mathbf{x}_j]\right) \mathbf{x}_j \mathbf{W}

    Args:
        in_channels (int): Size of each input sample.
        out_channels (int): Size of each output sample.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(aggr="mean")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.gate = nn.Linear(2 * in_channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.lin.reset_parameters()
        self.gate.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.propagate(edge_index, x=x, h=self.lin(x))

    def message(self, x_i: Tensor, x_j: Tensor, h_j: Tensor) -> Tensor:
        return torch.sigmoid(self.gate(torch.cat([x_i, x_j], dim=-1))) * h_j


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="A custom GNN as the GAS guide, a few search steps.")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--builder", default="adjacent", help="adjacent, aligned, all_previous or cells")
    p.add_argument("--gamma", type=float, default=0.5)
    args = p.parse_args(argv)

    torch.manual_seed(0)
    space = SearchSpace(num_cells=3, num_nodes=2, reduction_cells=(1,), channels=4, input_size=(32, 32))
    net = Supernet(space)
    graph = net.arch_graph()
    # A MessagePassing class is wrapped in GraphGuidedModule: alpha' = alpha + gamma * GNN(alpha).
    # The string "custom_gnn:GatedMeanConv" would do the same.
    guide = build_guide(GatedMeanConv, space, builder=args.builder, gamma=args.gamma, learn_gamma=True)
    print(guide)

    w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.05, momentum=0.9)
    a_opt = torch.optim.Adam([net.alpha, *guide.parameters()], lr=3e-2)  # large lr: visible in 3 steps
    E = space.edges_per_cell
    for step in range(args.steps):
        x = torch.randn(2, space.in_channels, *space.input_size)
        y = torch.randint(0, space.num_classes, (2, *space.input_size))
        w_opt.zero_grad()
        a_opt.zero_grad()
        alpha_p = guide(net.alpha, graph)
        loss = F.cross_entropy(net(x, alpha_p), y)
        loss.backward()
        delta = (alpha_p - net.alpha).detach().view(space.num_cells, E, -1)  # before alpha moves
        w_opt.step()
        a_opt.step()
        per_cell = ", ".join(f"cell {k}: {delta[k].abs().mean():.2e}" for k in range(space.num_cells))
        print(f"step {step}: loss {loss.item():.3f}  gamma {guide.gamma.item():.4f}  "
              f"mean |alpha' - alpha| {per_cell}")

    with torch.no_grad():
        alpha_p = guide(net.alpha, graph)
        w = torch.softmax(alpha_p, -1).view(space.num_cells, E, -1).mean(1)
    print("mean op weights softmax(alpha') per cell:")
    print("  " + " ".join(f"{o[:10]:>10}" for o in space.ops))
    for k in range(space.num_cells):
        print("  " + " ".join(f"{v:>10.4f}" for v in w[k].tolist()) + f"   cell {k}")


if __name__ == "__main__":
    main()
