"""Latency-weight sweep on CamVid: does a larger weight give a faster derived network?

Runs one GAS search per latency weight (same seed, data, budget and table), then times every derived
network side by side (interleaved, batch 1) and prints a markdown table of predicted and measured
latency. Reproduces the table in docs/results.md:

    python examples/latency_sweep.py --weights 0 0.3 3 30 --out runs/sweep

Searches resume from their checkpoints, so an interrupted sweep continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from gasgnn import GASNet, Genotype
from gasgnn.cli import main as gasgnn_main
from gasgnn.latency import LatencyTable
from gasgnn.train import benchmark
from gasgnn.viz import analyze


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.3, 3.0, 30.0])
    p.add_argument("--out", type=Path, default=Path("runs/sweep"))
    p.add_argument("--data", default="camvid")
    p.add_argument("--root", default=None)
    p.add_argument("--guide", default="gcn_sim")
    p.add_argument("--input-size", type=int, nargs=2, default=[90, 120], help="training crop of the searches")
    p.add_argument("--bench-size", type=int, nargs=2, default=[180, 240], help="size of the latency measurement")
    p.add_argument("--num-cells", type=int, default=8)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--warmup-epochs", type=int, default=2)
    p.add_argument("--steps-per-epoch", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--a-lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    # The space (and so the latency table and the ArchGraph) is laid out at the deployment size; the
    # search trains on --input-size crops.
    space_args = ["--num-cells", str(args.num_cells), "--channels", str(args.channels),
                  "--input-size", *map(str, args.bench_size)]
    table_path = args.out / "latency_table.json"
    if not table_path.is_file():  # one table, measured at the bench size, shared by every run
        gasgnn_main(["latency", "measure", *space_args[:4], "--sizes", *map(str, args.bench_size),
                     "--out", str(table_path), "--heads", "aspp"])
    runs = []
    for w in args.weights:
        run = args.out / f"w{w:g}"
        t = time.perf_counter()
        cmd = ["search", "--data", args.data, *(["--root", args.root] if args.root else []), *space_args,
               "--guide", args.guide, "--latency-weight", str(w), "--latency-table", str(table_path),
               "--epochs", str(args.epochs), "--warmup-epochs", str(args.warmup_epochs),
               "--steps-per-epoch", str(args.steps_per_epoch), "--batch-size", str(args.batch_size),
               "--a-lr", str(args.a_lr), "--seed", str(args.seed), "--out", str(run), "--no-figures",
               "--crop", *map(str, args.input_size)]
        if (run / "checkpoint.pt").is_file():
            cmd.append("--resume")
        gasgnn_main(cmd)
        runs.append((w, run, time.perf_counter() - t))

    table = LatencyTable.load(table_path)
    nets, rows = {}, []
    for w, run, secs in runs:
        g = Genotype.load(run / "genotype.json")
        space = g.space.replace(input_size=tuple(args.bench_size))
        nets[f"w={w:g}"] = GASNet(g, space, head="aspp").eval()
        st = analyze(g)
        rows.append({"weight": w, "run": str(run), "search_seconds": secs,
                     "predicted_ms": float(table.predict(g, space=space, input_size=tuple(args.bench_size))),
                     "light_ops": st["light_ops"], "large_rf_last4": st["large_rf_last4"]})
    res = benchmark(nets, sizes=[tuple(args.bench_size)], warmup=5, iters=60, rounds=6, progress=False)
    for row, r in zip(rows, res["results"]):
        row["measured_ms"] = r["latency_ms"]["median"]
        row["measured_p10_p90"] = [r["latency_ms"].get("p10"), r["latency_ms"].get("p90")]
        row["params"] = r["params"]
    (args.out / "sweep.json").write_text(json.dumps({"rows": rows, "environment": res["environment"],
                                                     "torch_threads": torch.get_num_threads()}, indent=2))
    print("| latency weight | predicted (ms) | measured (ms, median) | light-weight ops | large-RF ops in last 4 "
          "| parameters | search wall (s) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['weight']:g} | {r['predicted_ms']:.2f} | {r['measured_ms']:.2f} | {r['light_ops']} | "
              f"{r['large_rf_last4']} | {r['params'] / 1e6:.3f} M | {r['search_seconds']:.0f} |")


if __name__ == "__main__":
    main()
