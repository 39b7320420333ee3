"""``gasgnn train``: train a derived network (or a reference network) from scratch."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gasgnn import distributed as dist
from gasgnn.commands._common import card_drawer, emit_json
from gasgnn.commands._config import add_job_args, claim_out, settings
from gasgnn.commands._data import add_data_args, add_distributed_args, data_kwargs, resolve_workers


def register(sub: argparse._SubParsersAction) -> None:
    from gasgnn.train import TrainConfig

    d = TrainConfig()
    p = sub.add_parser(
        "train",
        help="train a derived network from scratch",
        description=(
            "Trains the GASNet of a genotype (a JSON file, or a reference name such as hand_sep) from "
            "scratch with SGD, a poly schedule with warm-up and the standard augmentation; validates "
            "every epoch and writes last.pt, best.pt, metrics.csv and curves.png into --out, and at the end "
            "OUT/pretrained/: the best network as GASNet.from_pretrained loads it, with a model card. Runs "
            "data-parallel (DDP) under 'torchrun --nproc_per_node N -m gasgnn train ...' (--batch-size is "
            "per process; see docs/distributed.md)."
        ),
    )
    a, D = p.add_argument, " (default: %(default)s)"
    a("--genotype", required=True, help="genotype JSON file or reference name (hand_sep, hand_light)")
    add_data_args(p)
    a("--train-split", default="train", help="training split" + D)
    a("--val-split", default="val", help="validation split; 'none' to skip" + D)
    a("--out", type=Path, default=Path("runs/train"), help="run directory" + D)
    a("--epochs", type=int, default=d.epochs, help="epochs" + D)
    a("--batch-size", type=int, default=d.batch_size, help="batch size per process" + D)
    a("--lr", type=float, default=d.lr, help="peak SGD learning rate" + D)
    a("--momentum", type=float, default=d.momentum, help="SGD momentum" + D)
    a("--weight-decay", type=float, default=d.weight_decay, help="weight decay" + D)
    a("--warmup-iters", type=int, default=d.warmup_iters, help="linear warm-up iterations" + D)
    a("--max-iters", type=int, default=None, help="cap on total iterations; the schedule ends there" + D)
    a("--crop", type=int, nargs=2, default=list(d.crop_size), metavar=("H", "W"), help="training crop" + D)
    a("--scale-range", type=float, nargs=2, default=list(d.scale_range), metavar=("LO", "HI"),
      help="random scale range" + D)
    a("--val-size", type=int, nargs=2, default=None, metavar=("H", "W"),
      help="resize validation images (default: native size)")
    a("--val-every", type=int, default=d.val_every, help="validate every n epochs" + D)
    a("--head", default=d.head, choices=["aspp", "ppm", "simple"], help="head" + D)
    a("--head-channels", type=int, default=d.head_channels, help="head width" + D)
    a("--aux", action="store_true", help="auxiliary head (loss weight --aux-weight)")
    a("--aux-weight", type=float, default=d.aux_weight, help="auxiliary loss weight" + D)
    a("--ohem", action="store_true", help="OHEM cross-entropy")
    a("--ohem-thresh", type=float, default=d.ohem_thresh,
      help="OHEM keeps pixels whose true-class probability is below this" + D)
    a("--ohem-min-kept", type=int, default=d.ohem_min_kept, help="OHEM keeps at least this many pixels" + D)
    a("--class-weights", action="store_true", help="median-frequency class weights")
    a("--amp", action="store_true", help="mixed precision (CUDA only; ignored on the CPU)")
    a("--resume", action="store_true", help="continue from OUT/last.pt")
    a("--seed", type=int, default=d.seed, help="seed" + D)
    a("--deterministic", action="store_true", help="deterministic algorithms")
    a("--device", default="auto", help="auto, cpu, cuda, cuda:1, ..." + D)
    a("--no-progress", action="store_true", help="no progress bars")
    a("--json", action="store_true", help="print the summary as JSON")
    add_distributed_args(p)
    add_job_args(p, run_dir=True, resume=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with dist.session(args.dist_backend):
        trainer = _plan(args)  # every check that can refuse the run, before --out is created or touched
        with claim_out(args, "gasgnn train", main=dist.is_main()):
            return _run(args, trainer)


def _plan(args: argparse.Namespace) -> Any:
    """The :class:`~gasgnn.train.Trainer` of the options (config, genotype, data, memory, loggers checked)."""
    from gasgnn.data import build_dataset, eval_transform, train_transform
    from gasgnn.genotype import resolve_genotype
    from gasgnn.models import build_model, check_memory, estimate_memory, gasnet_spec
    from gasgnn.runner import build_loggers
    from gasgnn.space import SearchSpace
    from gasgnn.train import TrainConfig, Trainer

    cfg = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
        weight_decay=args.weight_decay, warmup_iters=args.warmup_iters, max_iters=args.max_iters,
        crop_size=tuple(args.crop), scale_range=tuple(args.scale_range),
        val_size=tuple(args.val_size) if args.val_size else None, val_every=args.val_every, head=args.head,
        head_channels=args.head_channels, aux=args.aux, aux_weight=args.aux_weight, ohem=args.ohem,
        ohem_thresh=args.ohem_thresh, ohem_min_kept=args.ohem_min_kept, class_weights=args.class_weights,
        amp=args.amp, workers=resolve_workers(args, args.device), seed=args.seed, deterministic=args.deterministic,
        device=args.device, progress=not args.no_progress, sync_bn=args.sync_bn,
    )
    genotype = resolve_genotype(args.genotype, SearchSpace(input_size=tuple(args.crop)))
    kw = data_kwargs(args)
    ignore = int(kw.get("ignore_index", 255))
    train_set = build_dataset(args.data, args.root, args.train_split,
                              transform=train_transform(cfg.crop_size, cfg.scale_range, ignore), **kw)
    val_set = None
    if args.val_split.lower() != "none":
        val_set = build_dataset(args.data, args.root, args.val_split,
                                transform=eval_transform(cfg.val_size), **kw)
    for flag, split, ds in (("--train-split", args.train_split, train_set), ("--val-split", args.val_split, val_set)):
        if ds is not None and len(ds) == 0:
            raise ValueError(f"{flag} {split}: no images in {args.data} split '{split}' "
                             f"({getattr(ds, 'root', args.root)}); an empty list file?")
    spec = gasnet_spec(genotype, train_set.num_classes, cfg.head, cfg.head_channels, cfg.aux)
    est = estimate_memory(lambda: build_model(spec), (cfg.batch_size, 3, *cfg.crop_size), training=True)
    check_memory(est, dist.resolve_device(cfg.device), f"the network at {cfg.crop_size[0]}x{cfg.crop_size[1]}, batch "
                 f"{cfg.batch_size}", "--crop or --batch-size (or the genotype's channels)")
    loggers = build_loggers(args.logger, args.out, "train")
    return Trainer(spec, train_set, val_set, cfg, args.out, extra_config={"args": settings(args)}, loggers=loggers)


def _run(args: argparse.Namespace, trainer: Any) -> int:
    from gasgnn.utils import json_safe

    main = dist.is_main()  # only rank 0 prints
    log = sys.stderr if args.json else sys.stdout
    train_set, val_set = trainer.train_set, trainer.val_set
    if main:
        print(f"train: {len(train_set)} images ({args.data}/{args.train_split}), "
              f"val: {len(val_set) if val_set is not None else 0}, {train_set.num_classes} classes -> {args.out}"
              + (f", {dist.world_size()} processes" if dist.is_distributed() else ""), file=log)
    res = trainer.fit(resume=args.resume, allow_changes=args.allow_changes)
    if not main:
        return 0
    pretrained = _write_pretrained(args.out, {"train_device": str(trainer.device)})
    res["pretrained"] = str(pretrained) if pretrained is not None else None
    if args.json:
        emit_json(json_safe(res))
    else:
        print(f"done: {res['epochs']} epochs, {res['iterations']} iterations in {res['seconds']:.0f} s; "
              f"best val mIoU {100 * res['best_miou']:.2f}% (epoch {res['best_epoch']}); "
              f"checkpoints in {args.out}" + (f", pretrained network in {pretrained}" if pretrained else ""))
    return 0


def _write_pretrained(out: Path, metadata: dict) -> Path | None:
    """Writes ``out/pretrained/`` from ``out/best.pt`` (replacing the run's earlier one); :obj:`None`, with a note
    on stderr, when there is no ``best.pt`` or safetensors is not installed (the run itself is complete)."""
    from gasgnn.models import save_pretrained_from_checkpoint
    from gasgnn.runner import RunDir
    from gasgnn.utils import MissingExtraError

    best, target = RunDir(out) / RunDir.BEST, RunDir(out) / RunDir.PRETRAINED
    if not best.is_file():
        print(f"gasgnn train: {target} not written: no {best}", file=sys.stderr)
        return None
    try:
        return save_pretrained_from_checkpoint(best, target, metadata=metadata, draw=card_drawer(), overwrite=True)
    except MissingExtraError as e:
        print(f"gasgnn train: {target} not written: {e}", file=sys.stderr)
        return None
