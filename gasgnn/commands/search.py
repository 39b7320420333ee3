"""``gasgnn search``: latency-aware GAS search (or the random-search baseline)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from gasgnn import distributed as dist
from gasgnn.commands._common import add_space_args, emit_json, space_from_args
from gasgnn.commands._config import DefaultsFormatter, add_job_args, claim_out, settings
from gasgnn.commands._data import add_data_args, add_distributed_args, search_loaders


def register(sub: argparse._SubParsersAction) -> None:
    from gasgnn.search import SearchConfig

    d = SearchConfig()
    p = sub.add_parser(
        "search",
        help="search a network (GAS bi-level search, or --random)",
        description=(
            "Latency-aware GAS search: network weights by SGD on one half of the training set, "
            "architecture parameters and the graph-guided module by Adam on the other, loss = "
            "cross-entropy + latency weight x latency term from a lookup table measured on this device. "
            "Writes config.json, metrics.csv, checkpoint.pt, genotype.json, alpha_history.pt, "
            "latency_table.json, summary.json and figures/ into --out. Re-run with --resume after a kill. "
            "Runs data-parallel under 'torchrun --nproc_per_node N -m gasgnn search ...' (--batch-size is per "
            "process; see docs/distributed.md)."
        ),
        formatter_class=DefaultsFormatter,
    )
    add_space_args(p)
    add_data_args(p, default="camvid", workers="auto").add_argument(
        "--scale-range", type=float, nargs=2, default=None, metavar=("LO", "HI"),
        help="random-scale range of the augmentation, relative to the stored images (default: centred on "
             "input-size / image-size)")
    g = p.add_argument_group("search")
    g.add_argument("--out", type=Path, default=Path("runs/search"), help="run directory")
    g.add_argument("--crop", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="training crop of the search (default: --input-size). --input-size stays the "
                        "resolution the latency table and the ArchGraph are laid out for, so a search can "
                        "train at reduced resolution while optimising latency at the deployment one")
    g.add_argument("--guide", default=d.guide,
                   help="guidance module: slot_sim (the default: slot-to-slot attention, update bounded below "
                        "alpha), gcn_sim (the GAS algebra), gcn_sim_raw, gcn, gat, gatv2, sage, gin, transformer, "
                        "fc, none, any torch_geometric conv by name, or package.module:ClassName (docs/ggm.md)")
    g.add_argument("--guide-arg", action="append", default=[], metavar="KEY=VALUE", type=_guide_arg,
                   help="option of the guide or its conv, repeatable (e.g. --guide APPNP --guide-arg K=10 "
                        "--guide-arg alpha=0.1); VALUE is a Python literal (10, 0.1, None, 'x') or a string")
    g.add_argument("--latency-table", type=Path, default=None,
                   help="latency table JSON; missing entries are measured (default: measure one for this "
                        "space on --device and save it in the run directory)")
    g.add_argument("--latency-backend", default=None, metavar="NAME",
                   help="latency backend of the table (torch, onnxruntime, torch-compile, ...): missing entries, or "
                        "a new table, are measured on it; a --latency-table of another backend is refused "
                        "(default: the table's own, torch for a new table)")
    g.add_argument("--latency-weight", type=float, default=d.latency_weight, help="lambda of the latency term")
    g.add_argument("--latency-form", choices=["linear", "log", "target"], default=d.latency_form)
    g.add_argument("--target-ms", type=float, default=None, help="latency target (target form, random search)")
    g.add_argument("--target-fps", type=float, default=None, help="FPS target (target form)")
    g.add_argument("--latency-fps-window", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="adapt the latency weight (FasterSeg-style): after each architecture epoch multiply it by "
                        "--latency-weight-factor when the expected FPS is below LO, divide it when above HI; "
                        "--latency-weight is the initial value")
    g.add_argument("--latency-ms-window", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="the same window as a latency range in ms (LO HI ms = 1000/HI .. 1000/LO FPS)")
    g.add_argument("--latency-weight-factor", type=float, default=d.adaptive_factor,
                   help="multiplicative step of the adaptive latency weight")
    g.add_argument("--guide-weight-decay", type=float, default=d.guide_weight_decay,
                   help="weight decay of the guide's parameters (alpha keeps its own)")
    g.add_argument("--epochs", type=int, default=d.epochs)
    g.add_argument("--warmup-epochs", type=int, default=d.warmup_epochs, help="epochs with alpha frozen")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="images per step on each half (per process)")
    g.add_argument("--steps-per-epoch", type=int, default=None, help="cap on steps per epoch")
    g.add_argument("--w-lr", type=float, default=d.w_lr, help="weights' SGD learning rate")
    g.add_argument("--a-lr", type=float, default=d.a_lr, help="architecture Adam learning rate")
    g.add_argument("--w-lr-min", type=float, default=d.w_lr_min, help="end of the weights' cosine schedule")
    g.add_argument("--w-momentum", type=float, default=d.w_momentum, help="weights' SGD momentum")
    g.add_argument("--w-weight-decay", type=float, default=d.w_weight_decay, help="weights' weight decay")
    g.add_argument("--a-weight-decay", type=float, default=d.a_weight_decay, help="alpha's weight decay")
    g.add_argument("--grad-clip", type=float, default=d.grad_clip, help="max gradient norm of the weights")
    g.add_argument("--head", choices=["aspp", "ppm"], default=d.head,
                   help="head of the derived network, for its predicted latency")
    g.add_argument("--latency-with-none", action="store_true",
                   help="keep 'none' in the expected latency (by default it is left out: no derived network has it)")
    g.add_argument("--relaxation", choices=["softmax", "gumbel"], default=d.relaxation)
    g.add_argument("--tau", type=float, nargs=2, default=[d.tau_start, d.tau_end], metavar=("START", "END"),
                   help="temperature schedule")
    g.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    g.add_argument("--checkpoint-ops", action="store_true",
                   help="recompute op outputs in backward (much less memory, ~1.8x slower step)")
    g.add_argument("--partial-channels", type=int, default=1,
                   help="PC-DARTS: only 1/k of the channels go through the ops")
    g.add_argument("--shared-relu", action="store_true", help="one ReLU of each edge input shared by its conv ops")
    g.add_argument("--supernet-impl", choices=["batched", "per_edge"], default=d.supernet_impl,
                   help="node-batched cells (every op once per node on all its edges) or per-edge mixed ops")
    g.add_argument("--cuda-graphs", action="store_true", help="CUDA graphs for both steps (CUDA only)")
    g.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--deterministic", action="store_true", help="deterministic algorithms (reproducible resume)")
    g.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt")
    g.add_argument("--no-figures", action="store_true", help="skip the figures at the end")
    g.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_distributed_args(p).add_argument(
        "--check-sync-every", type=int, default=d.check_sync_every, metavar="STEPS",
        help="check every STEPS steps (and at every epoch end) that all processes hold identical alpha and "
             "guidance parameters; 0: at epoch ends only")
    r = p.add_argument_group("random search (the supplement's baseline)")
    r.add_argument("--random", action="store_true", help="random search instead of GAS")
    r.add_argument("--samples", type=int, default=8, help="genotypes to train")
    r.add_argument("--steps-per-sample", type=int, default=50, help="training steps per genotype")
    r.add_argument("--random-sampler", choices=["uniform", "lighten"], default="uniform",
                   help="how samples meet --target-ms: 'uniform' rejects those over it; 'lighten' walks each one "
                        "down (a random edge gets a random op the table says is cheaper there) until it fits, "
                        "for targets below what uniform samples reach")
    add_job_args(p, run_dir=True, resume=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with dist.session(args.dist_backend):
        plan = _plan(args)  # every check that can refuse the run, before --out is created or touched
        with claim_out(args, "gasgnn search", main=dist.is_main()):
            return _run(args, plan)


def _plan(args: argparse.Namespace) -> dict[str, Any]:
    """Validates the options and builds what needs no run directory: space, config, data, loggers."""
    from gasgnn.models import Supernet, check_memory, estimate_memory
    from gasgnn.runner import build_loggers
    from gasgnn.search import SearchConfig

    if args.random and dist.is_distributed():
        raise ValueError("--random runs in one process; launch it without torchrun")
    if args.random and args.resume:  # random search keeps no checkpoint: it would start over silently
        raise ValueError("--resume: a random search (--random) cannot be resumed; run it again with --overwrite")
    space = space_from_args(args)
    if args.latency_fps_window and args.latency_ms_window:
        raise ValueError("give --latency-fps-window or --latency-ms-window, not both")
    window = args.latency_fps_window
    if args.latency_ms_window:
        lo_ms, hi_ms = sorted(args.latency_ms_window)
        if lo_ms <= 0:
            raise ValueError(f"--latency-ms-window: must be > 0 ms, got {args.latency_ms_window}")
        window = [1000.0 / hi_ms, 1000.0 / lo_ms]
    cfg = SearchConfig(
        epochs=args.epochs, warmup_epochs=min(args.warmup_epochs, args.epochs), batch_size=args.batch_size,
        steps_per_epoch=args.steps_per_epoch, w_lr=args.w_lr, a_lr=args.a_lr, guide=args.guide,
        w_lr_min=args.w_lr_min, w_momentum=args.w_momentum, w_weight_decay=args.w_weight_decay,
        a_weight_decay=args.a_weight_decay, grad_clip=args.grad_clip, head=args.head,
        latency_without_none=not args.latency_with_none,
        guide_kwargs=dict(args.guide_arg),
        latency_weight=args.latency_weight, latency_form=args.latency_form, target_ms=args.target_ms,
        target_fps=args.target_fps, relaxation=args.relaxation, tau_start=args.tau[0], tau_end=args.tau[1],
        amp=args.amp, seed=args.seed, deterministic=args.deterministic,
        memory={"checkpoint": args.checkpoint_ops, "partial_channels": args.partial_channels,
                "shared_relu": args.shared_relu},
        sync_bn=args.sync_bn, check_sync_every=args.check_sync_every,
        supernet_impl=args.supernet_impl, cuda_graphs=args.cuda_graphs,
        adaptive_fps=tuple(window) if window else None, adaptive_factor=args.latency_weight_factor,
        guide_weight_decay=args.guide_weight_decay,
    )
    if not args.random:
        from gasgnn.ggm import build_guide

        build_guide(args.guide, space, **cfg.guide_kwargs)  # a bad --guide fails now, not after the table
    crop = tuple(args.crop) if args.crop else space.input_size
    device = str(dist.resolve_device(args.device))
    est = estimate_memory(lambda: Supernet(space, memory=cfg.memory), (cfg.batch_size, space.in_channels, *crop),
                          training=True)
    check_memory(est, device, f"the supernet ({space.num_cells} cells) at {crop[0]}x{crop[1]}, batch "
                              f"{cfg.batch_size}", "--input-size/--crop or --batch-size")
    loaders = search_loaders(args, crop, cfg.batch_size, cfg.seed, device)
    cfg.num_workers = args.workers  # resolved ('auto': none on the CPU, up to 4 with a GPU)
    if loaders[3].num_classes != space.num_classes:
        space = space.replace(num_classes=loaders[3].num_classes)
    loggers = build_loggers(args.logger, args.out, "search") if not args.random else []
    return {"space": space, "cfg": cfg, "crop": crop, "device": device, "loaders": loaders, "loggers": loggers}


def _run(args: argparse.Namespace, plan: dict[str, Any]) -> int:
    from gasgnn.latency import LatencyTable
    from gasgnn.runner import RunDir
    from gasgnn.search import Searcher, random_search

    t0 = time.perf_counter()
    main = dist.is_main()  # only rank 0 measures, writes and prints
    space, cfg, crop, device = plan["space"], plan["cfg"], plan["crop"], plan["device"]
    wl, al, vl, base = plan["loaders"]
    run = RunDir(args.out)
    table = None
    if main:
        args.out.mkdir(parents=True, exist_ok=True)
        from gasgnn.latency import load_or_measure_table

        table = load_or_measure_table(args.latency_table, space, device, save_to=run / RunDir.LATENCY_TABLE,
                                      heads=(args.head,), backend=args.latency_backend)
    if dist.is_distributed():  # one table for all ranks: the latency term must be the same everywhere
        obj = dist.broadcast_object(table.to_dict() if main else None)
        table = table if main else LatencyTable.from_dict(obj, "rank 0's latency table")
    data_cfg = {"data": {"name": args.data, "root": str(args.root) if args.root else None,
                         "data_args": args.data_arg, "workers": args.workers,
                         "crop": list(crop)}, "args": settings(args)}
    if dist.is_distributed():
        data_cfg["distributed"] = {"world_size": dist.world_size(), "backend": dist.backend_name(),
                                   "global_batch": dist.world_size() * cfg.batch_size}
    if args.random:
        res = random_search(space, wl(0), vl(0), args.samples, args.steps_per_sample, table=table,
                            target_ms=args.target_ms, head=args.head, seed=args.seed, run_dir=args.out,
                            device=args.device, sampler=args.random_sampler,
                            ignore_index=base.ignore_index, extra_config=data_cfg, progress=not args.json)
        genotype = res.genotype
    else:
        images = None
        if any(lg.wants_images for lg in plan["loggers"]):
            from gasgnn.viz import search_epoch_images as images
        searcher = Searcher(space, cfg, wl, al, vl, table=table, run_dir=args.out, device=device,
                            ignore_index=base.ignore_index, extra_config=data_cfg, progress=not args.json,
                            loggers=plan["loggers"], epoch_images=images)
        genotype = searcher.run(resume=args.resume, allow_changes=args.allow_changes)
    if not main:
        return 0
    if not args.no_figures:
        make_figures(args.out)
    wall = time.perf_counter() - t0
    pred = float(table.predict(genotype))
    summary = {"run_dir": str(args.out), "genotype": str(run / RunDir.GENOTYPE),
               "predicted_latency_ms": pred, "wall_seconds": wall}
    if args.json:
        emit_json(summary)
    else:
        print(f"search done in {wall / 60:.1f} min; genotype: {run / RunDir.GENOTYPE} "
              f"(predicted {pred:.2f} ms on {table.meta.get('device_name', args.device)})")
    return 0


def make_figures(run_dir: Path) -> None:
    """Draws the run's figures when the drawing module is available."""
    try:
        from gasgnn.viz import draw_run
    except ImportError:
        return
    try:
        draw_run(run_dir)
    except Exception as e:  # figures are a convenience; never lose a finished search over them
        print(f"figures skipped: {e}")



def _guide_arg(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` of ``--guide-arg``: VALUE as a Python literal when it is one, else the string."""
    import ast

    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY a parameter name, got {text!r}")
    try:
        return key.strip(), ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key.strip(), value
