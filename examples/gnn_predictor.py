"""A small PyG GNN that predicts a derived network's latency from its genotype graph, against the
latency table's prediction, on held-out networks measured on this machine.

Measures ``--n`` random genotypes end to end (``gasgnn latency validate``'s code: every network timed
in round-robin passes) or reads a saved ``gasgnn latency validate --json`` file, builds a
:class:`~gasgnn.search.dataset.GenotypeDataset`, trains the GNN on a share of the networks and reports,
on the rest: Spearman's rank correlation, MAPE and the share within +-10 % of the measured latency, for

- ``table``: the latency lookup table's sum over the network's pieces (what the search optimises);
- ``table x c``: the table scaled by one constant fitted on the training networks (the table's bias is
  mostly a constant factor: per-op timing misses the effects of running ops back to back);
- ``gnn``: the GNN;
- ``repeat``: a second measurement of the same networks (``--repeat``), scored like a predictor of the
  first: the ceiling that timing noise on this machine leaves to any predictor.

Reproduces the numbers in docs/genotype_dataset.md:

    OMP_NUM_THREADS=1 python examples/gnn_predictor.py --n 120 --input-size 64 96 --out runs/predictor

Re-running with ``--validate runs/predictor/validate.json`` skips the measurement.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader
from torch_geometric.nn import GINEConv, global_add_pool

from gasgnn import SearchSpace
from gasgnn.search import GenotypeDataset


def featurize(data: Data) -> Data:
    """Node features: input/intermediate, in the concat, the cell's reduction flag, log channels and
    the log of the node's spatial size relative to the input (from the reductions before it)."""
    cell = data.node_cell
    red = data.cell_reduction.long()
    scale = torch.cumsum(red, 0) - red  # reductions before each cell
    H, W = data.input_size.view(-1).tolist()
    x = torch.stack([
        (data.node_pos < 2).float(),
        data.node_concat.float(),
        red[cell].float(),
        torch.log2(data.cell_channels[cell].float()) / 8,
        (-scale[cell].float() + math.log2(H * W) / 2) / 8,
    ], dim=1)
    data.x = x
    data.y = torch.log(data.latency_ms)
    return data


class LatencyGNN(nn.Module):
    """GINE layers over the genotype graph (ops as edge embeddings), summed over nodes: latency is
    roughly a sum of the network's pieces, so a sum readout fits it.

    Args:
        num_ops (int): Size of the op vocabulary.
        hidden (int, optional): Width. (default: :obj:`32`)
        num_layers (int, optional): Message-passing layers. (default: :obj:`3`)
    """

    def __init__(self, num_ops: int, hidden: int = 32, num_layers: int = 3) -> None:
        super().__init__()
        self.op = nn.Embedding(num_ops, hidden)
        self.stride = nn.Embedding(3, hidden)
        self.inp = nn.Linear(5, hidden)
        self.convs = nn.ModuleList(
            GINEConv(nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden)), edge_dim=hidden)
            for _ in range(num_layers)
        )
        self.out = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, data: Data) -> Tensor:
        e = self.op(data.edge_op) + self.stride(data.edge_stride)
        h = self.inp(data.x)
        for conv in self.convs:
            h = h + torch.relu(conv(h, data.edge_index, e))
        return self.out(global_add_pool(h, data.batch)).view(-1)


def metrics(pred: np.ndarray, meas: np.ndarray) -> dict[str, float]:
    rel = (pred - meas) / meas
    return {"spearman": float(stats.spearmanr(pred, meas)[0]), "mape": float(np.mean(np.abs(rel)) * 100),
            "within10": float(np.mean(np.abs(rel) <= 0.10) * 100)}


def train_gnn(train: list[Data], test: list[Data], num_ops: int, epochs: int, seed: int) -> np.ndarray:
    torch.manual_seed(seed)
    ys = torch.stack([d.y for d in train]).view(-1)
    mu, sd = float(ys.mean()), float(ys.std().clamp_min(1e-3))
    model = LatencyGNN(num_ops)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    loader = DataLoader(train, batch_size=16, shuffle=True)
    for _ in range(epochs):
        model.train()
        for b in loader:
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(b), (b.y - mu) / sd)
            loss.backward()
            opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        b = next(iter(DataLoader(test, batch_size=len(test))))
        return np.exp(model(b).numpy() * sd + mu)


def measure(n: int, size: tuple[int, int], seed: int, out: Path, name: str = "validate.json", rounds: int = 15,
            repeats: int = 15) -> Path:
    from gasgnn.latency import LatencyTable, validate

    space = SearchSpace(input_size=size)
    tfile = out / "table.json"
    table = LatencyTable.load(tfile) if tfile.exists() else LatencyTable(device="cpu", dtype="float32", batch=1)
    # One call per network per round, many rounds: load bursts on a shared machine hit all networks alike.
    res = validate(table, space, [size], n=n, seed=seed, warmup=2, repeats=repeats, rounds=rounds,
                   path=str(tfile), progress=False)
    path = out / name
    path.write_text(json.dumps({**res, "meta": table.meta}))
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=150, help="random networks to measure (default: %(default)s)")
    p.add_argument("--input-size", type=int, nargs=2, default=[64, 96], metavar=("H", "W"))
    p.add_argument("--validate", type=Path, default=None, help="a saved 'latency validate --json' file")
    p.add_argument("--repeat", type=Path, default=None,
                   help="a second measurement of the same networks; with --n it is measured (default: on)")
    p.add_argument("--no-repeat", action="store_true", help="skip the second measurement")
    p.add_argument("--out", type=Path, default=Path("runs/predictor"))
    p.add_argument("--rounds", type=int, default=15, help="round-robin passes when measuring (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=15, help="timed calls per network (default: %(default)s)")
    p.add_argument("--train-share", type=float, default=0.7)
    p.add_argument("--splits", type=int, default=5, help="random train/test splits (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    vfile = args.validate or measure(args.n, tuple(args.input_size), args.seed, args.out, rounds=args.rounds,
                                     repeats=args.repeats)
    rfile = args.repeat
    if rfile is None and args.validate is None and not args.no_repeat:
        rfile = measure(args.n, tuple(args.input_size), args.seed, args.out, "validate_repeat.json", args.rounds,
                        args.repeats)
    t_meas = time.perf_counter() - t0
    ds = GenotypeDataset(validate=[vfile], pre_transform=featurize)
    items = [ds[i] for i in range(len(ds))]
    meas_all = np.array([float(d.latency_ms) for d in items])
    again = None
    if rfile is not None:
        rep_ds = GenotypeDataset(validate=[rfile])
        assert all(rep_ds.genotype(i) == ds.genotype(i) for i in range(len(ds))), "--repeat: other networks"
        again = np.array([float(rep_ds[i].latency_ms) for i in range(len(rep_ds))])
    rows = []
    for split in range(args.splits):
        perm = np.random.default_rng(args.seed + split).permutation(len(items))
        k = int(args.train_share * len(items))
        tr, te = [items[i] for i in perm[:k]], [items[i] for i in perm[k:]]
        meas = meas_all[perm[k:]]
        table = np.array([float(d.table_latency_ms) for d in te])
        c = float(np.median(meas_all[perm[:k]] / np.array([float(d.table_latency_ms) for d in tr])))
        gnn = train_gnn(tr, te, len(ds.op_names), args.epochs, args.seed + split)
        rows.append({"table": metrics(table, meas), "table x c": metrics(c * table, meas), "gnn": metrics(gnn, meas)})
        if again is not None:
            rows[-1]["repeat"] = metrics(again[perm[k:]], meas)
    t_all = time.perf_counter() - t0
    print(f"{len(items)} networks at {args.input_size[0]}x{args.input_size[1]} "
          f"({int(len(items) * args.train_share)} train / {len(items) - int(len(items) * args.train_share)} "
          f"held out, {args.splits} random splits; measuring {t_meas:.0f} s, total {t_all:.0f} s)")
    print(f"measured latency: median {np.median(meas_all):.2f} ms, range {meas_all.min():.2f}-{meas_all.max():.2f} ms")
    print(f"{'predictor':10s} {'Spearman':>14s} {'MAPE %':>14s} {'within 10 %':>14s}")
    summary = {}
    for name in [n for n in ("table", "table x c", "gnn", "repeat") if n in rows[0]]:
        vals = {m: [r[name][m] for r in rows] for m in ("spearman", "mape", "within10")}
        summary[name] = {m: [float(np.mean(v)), float(np.std(v))] for m, v in vals.items()}
        print(f"{name:10s} " + " ".join(f"{np.mean(v):8.2f} +-{np.std(v):4.2f}" for v in vals.values()))
    (args.out / "predictor.json").write_text(json.dumps({"splits": rows, "summary": summary}, indent=2))
    if again is not None:
        print(f"test-retest over all {len(items)} networks: " + ", ".join(
            f"{k} {v:.2f}" for k, v in metrics(again, meas_all).items()))


if __name__ == "__main__":
    main()
