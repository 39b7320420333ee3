"""The GGM attention between two adjacent cells at the end of a search, and the run's metrics chart
(docs/ggm.md). Usage: python benchmarks/ggm_attention_figure.py RUN_DIR [RUN_DIR ...] CELL OUT_PREFIX

Rebuilds the guide from ``RUN_DIR/config.json`` and ``checkpoint.pt``, runs it on the final alpha and
draws ``A_ij`` for the slots i of cell CELL (rows) and j of cell CELL - 1 (columns), the arg-max of every
row marked. One run: ``PREFIX_attention.png`` and ``PREFIX_metrics.png``; several runs: their attention
side by side (two per row) in ``PREFIX_attention.png``, titled with each run's guide and latency weight.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from gasgnn import SearchSpace  # noqa: E402
from gasgnn.ggm import build_guide  # noqa: E402
from gasgnn.runner import RunDir  # noqa: E402
from gasgnn.viz import draw_metrics  # noqa: E402


def attention(run: Path, cell: int) -> tuple[torch.Tensor, list[str], dict, dict, int]:
    """``A`` ``[E, E]`` between cells ``cell - 1`` and ``cell``, slot labels, the diagnostics, config, epoch."""
    rd = RunDir(run)
    cfg = rd.read_config()
    space = SearchSpace.from_dict(cfg["space"])
    st = rd.load_checkpoint()
    guide = build_guide(cfg["search"]["guide"], space, **cfg["search"]["guide_kwargs"])
    guide.load_state_dict(st["guide"])
    alpha = st["net"]["alpha"]
    with torch.no_grad():
        alpha_p = guide(alpha)
    diag = guide.diagnostics(alpha, alpha_p)
    ei, att = guide.attention()[0]
    E = space.edges_per_cell
    A = torch.zeros(E, E)
    m = (ei[1] // E == cell) & (ei[0] // E == cell - 1)
    A[ei[1, m] % E, ei[0, m] % E] = att[m]
    g = space.arch_graph(alpha)
    labels = [f"{int(s)}->{int(d)}" for s, d in zip(g.src[:E], g.dst[:E])]
    return A, labels, diag, cfg, int(st["epoch"])


ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("runs", type=Path, nargs="+", help="search run directories (config.json, checkpoint.pt, metrics.csv)")
ap.add_argument("cell", type=int, help="target cell (>= 1); the sources are in cell - 1")
ap.add_argument("prefix", help="output prefix: PREFIX_attention.png (and PREFIX_metrics.png for one run)")
a = ap.parse_args()
cols = min(len(a.runs), 2)
rows = -(-len(a.runs) // cols)
fig, axes = plt.subplots(rows, cols, figsize=(5.4 * cols, 4.9 * rows), squeeze=False)
for ax in axes.flat[len(a.runs):]:
    ax.axis("off")
for ax, run in zip(axes.flat, a.runs):
    A, labels, diag, cfg, epoch = attention(run, a.cell)
    E = A.size(0)
    print(f"{run}: " + ", ".join(f"{k} {v:.3f}" for k, v in diag.items()))
    im = ax.imshow(A.numpy(), cmap="viridis", vmin=0)
    ax.scatter(A.argmax(dim=1).numpy(), range(E), marker="x", color="white", s=18, linewidths=1)
    ax.set_xticks(range(E), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(E), labels, fontsize=7)
    ax.set_xlabel(f"source slot in cell {a.cell - 1} (node -> node)")
    ax.set_ylabel(f"target slot in cell {a.cell}")
    ax.set_title(f"{run.name}: {cfg['search']['guide']}, λ = {cfg['search']['latency_weight']:g}, "
                 f"epoch {epoch}\nall cells: {diag['guide_distinct_sources']:.1f} distinct sources, entropy "
                 f"{diag['guide_attention_entropy']:.2f}, update {diag['guide_update_ratio']:.2f}", fontsize=8.5)
    fig.colorbar(im, ax=ax, fraction=0.046)
fig.tight_layout()
fig.savefig(f"{a.prefix}_attention.png", dpi=110)
if len(a.runs) == 1:
    draw_metrics(RunDir(a.runs[0]).read_metrics(), f"{a.prefix}_metrics.png")
