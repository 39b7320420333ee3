"""``gasgnn eval``: per-class IoU, mIoU and pixel accuracy of a trained network."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from gasgnn.commands._common import add_model_args, emit_json
from gasgnn.commands._config import add_job_args
from gasgnn.commands._data import add_data_args, data_kwargs, resolve_workers


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a trained network (mIoU)",
        description=(
            "Evaluates a checkpoint (or a genotype with --weights) on a dataset split: per-class IoU, "
            "mIoU and pixel accuracy from the confusion matrix (void pixels ignored), with optional "
            "flip and multi-scale inference, and optionally writes colourised predictions."
        ),
    )
    a, D = p.add_argument, " (default: %(default)s)"
    add_model_args(p, "weights file (state dict or checkpoint)")
    add_data_args(p)
    a("--split", default="val", help="split to evaluate" + D)
    a("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
      help="resize images before inference (default: native size)")
    a("--flip", action="store_true", help="average with the horizontally flipped prediction")
    a("--scales", type=float, nargs="+", default=[1.0], help="test scales, e.g. 0.75 1.0 1.25" + D)
    a("--save-predictions", type=Path, default=None, metavar="DIR", help="write colourised predictions here")
    a("--device", default="auto", help="auto, cpu, cuda, ..." + D)
    a("--amp", action="store_true", help="fp16 autocast (CUDA only)")
    a("--no-progress", action="store_true", help="no progress bar")
    a("--json", action="store_true", help="print the result as JSON")
    add_job_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from gasgnn.data import build_dataset, eval_transform, make_loader
    from gasgnn.models import load_model
    from gasgnn.train import evaluate
    from gasgnn.utils import json_safe

    kw = data_kwargs(args)
    dataset = build_dataset(args.data, args.root, args.split,
                            transform=eval_transform(tuple(args.size) if args.size else None), **kw)
    if len(dataset) == 0:
        raise ValueError(f"--split {args.split}: no images in {args.data} split '{args.split}' "
                         f"({getattr(dataset, 'root', args.root)}); an empty list file?")
    if args.size is not None and min(args.size) < 1:
        raise ValueError(f"--size: height and width must be >= 1, got {args.size[0]} {args.size[1]}")
    if args.checkpoint is not None:
        model, spec = load_model(checkpoint=args.checkpoint, head=args.head)
    else:
        from gasgnn.genotype import resolve_genotype

        g = resolve_genotype(args.genotype)
        model, spec = load_model(genotype=g, weights=args.weights, num_classes=dataset.num_classes,
                                 head=args.head, head_channels=args.head_channels)
        if args.weights is None:
            print("gasgnn eval: warning: no --weights, evaluating random weights", file=sys.stderr)
    if int(spec["num_classes"]) != dataset.num_classes:
        raise ValueError(f"the network predicts {spec['num_classes']} classes, "
                         f"dataset '{args.data}' has {dataset.num_classes}")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    loader = make_loader(dataset, 1, shuffle=False, num_workers=resolve_workers(args, device))
    res = evaluate(model, loader, dataset.num_classes, dataset.ignore_index, device, scales=args.scales,
                   flip=args.flip, amp=args.amp, save_dir=args.save_predictions,
                   progress=not args.no_progress)
    res.update({"split": args.split, "data": args.data, "head": spec.get("head"),
                "checkpoint": str(args.checkpoint) if args.checkpoint else None})
    if args.json:
        emit_json(json_safe(res))
        return 0
    names = res.get("classes") or [str(i) for i in range(dataset.num_classes)]
    width = max(len(n) for n in names)
    print(f"{args.data}/{args.split}: {res['images']} images, scales {res['scales']}, flip {res['flip']}")
    for n, iou in zip(names, res["per_class_iou"]):
        print(f"  {n:<{width}}  {'   n/a' if math.isnan(iou) else f'{100 * iou:6.2f}'}")
    print(f"mIoU {100 * res['miou']:.2f}%  pixel acc {100 * res['pixel_acc']:.2f}%  "
          f"mean acc {100 * res['mean_acc']:.2f}%")
    if args.save_predictions:
        print(f"predictions written to {args.save_predictions}")
    return 0
