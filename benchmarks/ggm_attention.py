"""Attention entropy of gcn_sim variants in an Adam loop with the Searcher's settings (docs/ggm.md).

The loss is E_softmax(alpha')[C] for a fixed random per-slot op cost C: a stand-in for the search loss
that any attention pattern can serve. Prints the mean normalised attention entropy at steps 0, 100, 300,
600, 1000 and the last, the loss and the norm of phi. Usage: python benchmarks/ggm_attention.py [steps]
"""
import argparse

import torch

from gasgnn import SearchSpace
from gasgnn.ggm import attention_entropy, build_guide
from gasgnn.search import arch_param_groups

torch.set_num_threads(1)
space = SearchSpace(num_cells=8, channels=8, input_size=(96, 128))
N, K = space.num_arch_nodes, space.num_ops
gen = torch.Generator().manual_seed(1)
C = torch.randn(N, K, generator=gen)  # a fixed per-slot op cost: the loss is E_softmax(alpha')[C]
ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("steps", type=int, nargs="?", default=1500, help="Adam steps per variant (default: 1500)")
steps = ap.parse_args().steps
variants = [
    ("raw, wd 1e-3 (old)", "gcn_sim_raw", {}, 1e-3),
    ("raw, wd 0", "gcn_sim_raw", {}, 0.0),
    ("raw+slots, wd 0", "gcn_sim", {"sim_input": "raw"}, 0.0),
    ("log_softmax+slots, wd 0", "gcn_sim", {"sim_input": "log_softmax"}, 0.0),
    ("cell_norm, no slots, wd 0", "gcn_sim", {"slot_features": False}, 0.0),
    ("cell_norm+slots, wd 0", "gcn_sim", {}, 0.0),
    ("cell_norm+slots, wd 1e-3", "gcn_sim", {}, 1e-3),
    ("cell_norm+slots, T=4, wd 0", "gcn_sim", {"temperature": 4.0}, 0.0),
]
marks = [0, 100, 300, 600, 1000, steps - 1]
for label, name, kw, gwd in variants:
    torch.manual_seed(0)
    alpha = torch.nn.Parameter(space.init_alpha())
    g = build_guide(name, space, **kw)
    opt = torch.optim.Adam(arch_param_groups([alpha], g, 1e-3, gwd), lr=3e-4, betas=(0.5, 0.999))
    ents, losses = [], []
    phi0 = float(g.convs[0].phi.weight.detach().norm())
    for t in range(steps):
        ap = g(alpha, None)
        loss = (torch.softmax(ap, -1) * C).sum() / N
        opt.zero_grad()
        loss.backward()
        opt.step()
        if t in marks:
            ents.append(attention_entropy(g.attention(), N))
            losses.append(float(loss))
    print(f"{label:30s} H: " + " ".join(f"{e:.4f}" for e in ents) + f" | loss {losses[0]:.4f}->{losses[-1]:.4f}"
          f" | |phi| {phi0:.3f}->{float(g.convs[0].phi.weight.norm()):.3f}", flush=True)
