"""The GGM attention between two adjacent cells at the end of a search, and the run's metrics chart
(docs/ggm.md). Usage: python benchmarks/ggm_attention_figure.py RUN_DIR CELL OUT_PREFIX

Rebuilds the guide from ``RUN_DIR/config.json`` and ``checkpoint.pt``, runs it on the final alpha and
draws ``A_ij`` for the slots i of cell CELL (rows) and j of cell CELL - 1 (columns).
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from gasgnn import SearchSpace  # noqa: E402
from gasgnn.ggm import attention_entropy, build_guide  # noqa: E402
from gasgnn.runner import RunDir  # noqa: E402
from gasgnn.viz import draw_metrics  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("run", type=Path, help="search run directory (config.json, checkpoint.pt, metrics.csv)")
ap.add_argument("cell", type=int, help="target cell (>= 1); the sources are in cell - 1")
ap.add_argument("prefix", help="output prefix: PREFIX_attention.png, PREFIX_metrics.png")
a = ap.parse_args()
run, cell, prefix = RunDir(a.run), a.cell, a.prefix
cfg = run.read_config()
space = SearchSpace.from_dict(cfg["space"])
st = run.load_checkpoint()
guide = build_guide(cfg["search"]["guide"], space, **cfg["search"]["guide_kwargs"])
guide.load_state_dict(st["guide"])
alpha = st["net"]["alpha"]
with torch.no_grad():
    guide(alpha)
ei, att = guide.attention()[0]
E = space.edges_per_cell
print(f"attention entropy (all cells): {attention_entropy(guide.attention(), alpha.size(0)):.3f}")
A = torch.zeros(E, E)
m = (ei[1] // E == cell) & (ei[0] // E == cell - 1)
A[ei[1, m] % E, ei[0, m] % E] = att[m]
g = space.arch_graph(alpha)
labels = [f"{int(s)}->{int(d)}" for s, d in zip(g.src[:E], g.dst[:E])]
fig, ax = plt.subplots(figsize=(5.2, 4.6))
im = ax.imshow(A.numpy(), cmap="viridis", vmin=0)
ax.set_xticks(range(E), labels, rotation=90, fontsize=7)
ax.set_yticks(range(E), labels, fontsize=7)
ax.set_xlabel(f"source slot in cell {cell - 1} (node -> node)")
ax.set_ylabel(f"target slot in cell {cell}")
ax.set_title(f"GGM attention A_ij, cell {cell - 1} -> {cell}, epoch {st['epoch']}", fontsize=9)
fig.colorbar(im, ax=ax, fraction=0.046)
fig.tight_layout()
fig.savefig(f"{prefix}_attention.png", dpi=110)
draw_metrics(run.read_metrics(), f"{prefix}_metrics.png")
print(A.max(dim=1).values)
