"""``gasgnn demo``: the main job end to end on the built-in dataset."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from gasgnn.commands._common import add_space_args, space_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the main job on the built-in dataset",
        description=(
            "Builds the search space, derives a genotype from the initial architecture parameters, "
            "builds the derived network (GASNet), times a forward pass and writes the genotype JSON."
        ),
    )
    add_space_args(p)
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="run directory (default: %(default)s)")
    p.add_argument("--head", default="aspp", help="head of the derived network (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gasgnn import GASNet, derive

    torch.manual_seed(args.seed)
    space = space_from_args(args)
    graph = space.arch_graph()
    print(f"search space: {space.num_cells} cells x {space.edges_per_cell} candidate edges x {space.num_ops} ops; "
          f"ArchGraph: {graph.num_nodes} nodes, {graph.edge_index.size(1)} relations")
    genotype = derive(space, graph.x)
    net = GASNet(genotype, space, head=args.head).eval()
    x = torch.randn(1, space.in_channels, *space.input_size)
    with torch.inference_mode():
        net(x)
        times = []
        for _ in range(5):
            t = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - t)
    ms = 1000 * sorted(times)[len(times) // 2]
    path = args.out / "genotype.json"
    genotype.save(path)
    n_params = sum(p.numel() for p in net.parameters())
    print(f"derived GASNet ({args.head} head): {n_params / 1e6:.2f} M parameters, "
          f"{ms:.1f} ms per {space.input_size[0]}x{space.input_size[1]} image on the CPU (median of 5)")
    print(f"genotype written to {path}")
    return 0
