"""``gasgnn demo``: the main job end to end on the built-in generated dataset.

Latency table for this machine, GAS search, derivation, a short training of the derived network,
evaluation (mIoU), a latency measurement and the figures: the whole pipeline in a few minutes on a
laptop CPU, with nothing downloaded.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from gasgnn.commands._common import emit_json
from gasgnn.commands._config import DefaultsFormatter, add_job_args, claim_out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole pipeline on the built-in dataset (a few minutes on a CPU)",
        description=(
            "The main job on gasgnn's generated street scenes: measure a latency table on this machine, "
            "run a latency-aware GAS search with the graph-guided module, derive the network, train it "
            "briefly, evaluate its mIoU, time it and draw the figures. Everything goes into --out."
        ),
        formatter_class=DefaultsFormatter,
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="run directory")
    # "slot_sim" is SearchConfig().guide (gasgnn.search stays unimported until the command runs)
    p.add_argument("--guide", default="slot_sim", help="guidance module (see 'gasgnn search --help')")
    p.add_argument("--latency-weight", type=float, default=0.05, help="lambda of the (log) latency term")
    p.add_argument("--size", type=int, nargs=2, default=[96, 128], metavar=("H", "W"), help="image size")
    p.add_argument("--num-cells", type=int, default=8, help="cells of the search space")
    p.add_argument("--channels", type=int, default=8, help="op channels of the first cells")
    p.add_argument("--images", type=int, default=64, help="generated training images")
    p.add_argument("--search-epochs", type=int, default=10)
    p.add_argument("--warmup-epochs", type=int, default=2, help="search epochs with alpha frozen")
    p.add_argument("--arch-lr", type=float, default=2e-2,
                   help="Adam learning rate of alpha and the guide: the demo has ~8 architecture steps per epoch, "
                        "so it needs a larger rate than a full search to move alpha visibly")
    p.add_argument("--train-iters", type=int, default=800, help="training iterations of the derived network")
    p.add_argument("--head", default="aspp", choices=["aspp", "ppm"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test in well under a minute)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--resume", action="store_true", help="continue an interrupted demo in --out")
    add_job_args(p, run_dir=True, resume=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with claim_out(args, "gasgnn demo"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from gasgnn.data import build_dataset, eval_transform, search_loaders, train_transform
    from gasgnn.latency import LatencyTable
    from gasgnn.models import GASNet
    from gasgnn.runner import RunDir
    from gasgnn.search import SearchConfig, Searcher
    from gasgnn.space import SearchSpace
    from gasgnn.train import TrainConfig, Trainer, benchmark
    from gasgnn.viz import analyze

    if args.quick:
        args.size, args.num_cells, args.channels, args.images = [32, 48], 3, 4, 8
        args.search_epochs, args.train_iters = 2, 4
    t_start = time.perf_counter()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    size = tuple(args.size)
    say = (lambda *a, **k: None) if args.json else print

    # 1. Data: generated street scenes (deterministic for the seed).
    ds_kw = dict(size=size, seed=args.seed)
    bs = 4
    wl, al, vl, train_set = search_loaders("synthetic", None, size, bs, seed=args.seed, scale_range=(0.75, 1.25),
                                           dataset_kwargs=dict(num_images=args.images, **ds_kw))
    val_set = build_dataset("synthetic", split="val", num_images=max(args.images // 4, 4),
                            transform=eval_transform(), **ds_kw)
    space = SearchSpace(num_cells=args.num_cells, channels=args.channels, input_size=size,
                        num_classes=train_set.num_classes)
    say(f"[1/6] data: {len(train_set)} generated training images at {size[0]}x{size[1]}, "
        f"{train_set.num_classes} classes; space: {space.num_cells} cells x {space.edges_per_cell} edges x "
        f"{space.num_ops} ops")

    # 2. Latency table on this machine (with --resume, a killed demo re-uses what it measured).
    t = time.perf_counter()
    run = RunDir(out)
    table = LatencyTable.measure(space, device=args.device, path=run / RunDir.LATENCY_TABLE,
                                 repeats=5 if args.quick else 20, warmup=2 if args.quick else 5,
                                 heads=(args.head,), progress=not args.json)
    say(f"[2/6] latency table: {len(table)} entries measured on {table.meta.get('device_name')} "
        f"in {time.perf_counter() - t:.0f} s -> {run / RunDir.LATENCY_TABLE}")

    # 3. Search (--resume continues from the run's checkpoint if the demo was interrupted).
    cfg = SearchConfig(epochs=args.search_epochs, warmup_epochs=min(args.warmup_epochs, args.search_epochs - 1),
                       batch_size=bs, guide=args.guide, latency_weight=args.latency_weight, a_lr=args.arch_lr,
                       seed=args.seed, head=args.head)
    searcher = Searcher(space, cfg, wl, al, vl, table=table, run_dir=out / "search",
                        device=args.device, ignore_index=train_set.ignore_index, progress=not args.json,
                        extra_config={"data": {"name": "synthetic", "num_images": args.images, "size": list(size)}})
    t = time.perf_counter()
    genotype = searcher.run(resume=args.resume and searcher.checkpoint_path.is_file(),
                            allow_changes=args.allow_changes)
    run.write_genotype(genotype)
    pred = float(table.predict(genotype, head=args.head))
    say(f"[3/6] search ({args.guide}, latency weight {args.latency_weight}): {time.perf_counter() - t:.0f} s; "
        f"derived genotype -> {run / RunDir.GENOTYPE} (predicted {pred:.2f} ms)")

    # 4. Train the derived network from scratch, evaluate on the validation images.
    t = time.perf_counter()
    tcfg = TrainConfig(epochs=1000, max_iters=args.train_iters, batch_size=bs, lr=0.02, warmup_iters=20,
                       crop_size=size, scale_range=(0.75, 1.25), head=args.head, workers=0, seed=args.seed,
                       device=args.device, progress=not args.json, val_every=1000)
    trainer = Trainer(genotype, build_dataset("synthetic", split="train", num_images=args.images,
                                              transform=train_transform(size, (0.75, 1.25)), **ds_kw),
                      val_set, tcfg, out=out / "train")
    res = trainer.fit(resume=args.resume and trainer.checkpoint_path.is_file(), allow_changes=args.allow_changes)
    miou = float(res["best_miou"])
    say(f"[4/6] training: {res['iterations']} iterations in {time.perf_counter() - t:.0f} s; "
        f"val mIoU {100 * miou:.1f}% -> {out / 'train'}")

    # 5. Real latency of the derived network on this machine.
    net = GASNet(genotype, space, head=args.head).eval()
    b = benchmark({args.head: net}, sizes=[size], device=args.device, warmup=3, iters=10 if args.quick else 30,
                  rounds=2, progress=False)
    measured = _median_ms(b)
    say(f"[5/6] measured latency: {measured:.2f} ms per {size[0]}x{size[1]} image "
        f"({1000 / measured:.0f} FPS); the table predicted {pred:.2f} ms")

    # 6. Figures and statistics.
    stats = analyze(genotype, table=table)
    summary = {
        "run_dir": str(out), "guide": args.guide, "latency_weight": args.latency_weight,
        "predicted_latency_ms": pred, "measured_latency_ms": measured, "miou": miou,
        "light_ops": stats.get("light_ops"), "large_rf_last4": stats.get("large_rf_last4"),
        "wall_seconds": time.perf_counter() - t_start,
    }
    search_run = RunDir(out / "search")
    search_run.write_summary({**search_run.read_summary(), "miou": miou, "measured_latency_ms": measured})
    figs = []
    try:
        from gasgnn.viz import draw_run

        figs, _, _ = draw_run(out / "search")
    except Exception as e:  # figures are a convenience; the numbers above stand without them
        say(f"figures skipped: {e}")
    summary["figures"] = [str(f) for f in figs]
    run.write_summary(summary)
    say(f"[6/6] figures: {len(figs)} in {search_run / RunDir.FIGURES}; summary -> {run / RunDir.SUMMARY}")
    say(f"done in {summary['wall_seconds'] / 60:.1f} min. Next: 'gasgnn viz {out / 'search'}', "
        f"'gasgnn train --genotype {run / RunDir.GENOTYPE} --data camvid', 'gasgnn bench --genotype "
        f"{run / RunDir.GENOTYPE}'.")
    if args.json:
        emit_json(summary)
    return 0


def _median_ms(result: dict) -> float:
    """The median latency (ms) of the first row of a :func:`gasgnn.train.bench.benchmark` result."""
    return float(result["results"][0]["latency_ms"]["median"])
