"""Data-loading throughput at search resolution, compared with a supernet search step.

Measures, for CamVid (``../shared/data/CamVid`` or ``$GASGNN_CAMVID``; ``--dataset synthetic``
needs no files) with the training augmentation (random scale, random crop to the search
resolution, flip, normalisation):

1. single-process cost per image: file decode + label mapping, and the transform;
2. loader throughput (images/s and seconds per batch) with ``--workers`` worker processes,
   excluding worker start-up (reported separately);
3. if :class:`gasgnn.Supernet` can be imported: the time of one search step at that resolution
   (forward, cross-entropy, backward and an SGD update of the weights on one batch), the ratio
   ``data time per batch / step time``, and the real data stall per step when the loader feeds
   the step loop concurrently.

Usage::

    python benchmarks/bench_data.py                     # CamVid, crop 180x240, batch 2, 2 workers
    python benchmarks/bench_data.py --dataset synthetic --json
    python benchmarks/bench_data.py --no-supernet --batches 200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gasgnn.data import build_dataset, make_loader, train_transform


def log(msg: str) -> None:
    """Progress to stderr (stdout stays clean for --json)."""
    print(f"[bench_data] {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--dataset", default="camvid", choices=("camvid", "synthetic"))
    p.add_argument("--root", type=Path, default=None, help="CamVid root (default: $GASGNN_CAMVID)")
    p.add_argument("--split", default="train")
    p.add_argument("--crop", type=int, nargs=2, default=(180, 240), metavar=("H", "W"))
    p.add_argument(
        "--scale-range",
        type=float,
        nargs=2,
        default=None,
        metavar=("LO", "HI"),
        help="random scale range (default: 0.75..1.25 x crop/image, as `gasgnn search` uses)",
    )
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batches", type=int, default=60, help="timed batches")
    p.add_argument("--warmup", type=int, default=4, help="untimed batches after worker start-up")
    p.add_argument("--samples", type=int, default=24, help="images for the single-process breakdown")
    p.add_argument("--steps", type=int, default=3, help="timed supernet steps")
    p.add_argument("--no-supernet", action="store_true", help="skip the supernet timing")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    return p.parse_args(argv)


def build(args: argparse.Namespace) -> tuple[Any, tuple[float, float]]:
    kw: dict[str, Any] = {"size": (360, 480), "num_images": 367} if args.dataset == "synthetic" else {}
    root = args.root if args.dataset == "camvid" else None
    probe = build_dataset(args.dataset, root, args.split, **kw)
    h, w = probe.image_size(0)
    if args.scale_range is None:
        f = max(args.crop[0] / h, args.crop[1] / w)
        scale = (0.75 * f, 1.25 * f)
    else:
        scale = tuple(args.scale_range)
    tf = train_transform(tuple(args.crop), scale, ignore_index=probe.ignore_index)
    return build_dataset(args.dataset, root, args.split, transform=tf, **kw), scale


def single_process_breakdown(ds: Any, n: int) -> dict[str, float]:
    """Per-image cost in one process with one torch thread (as in a loader worker)."""
    n = min(n, len(ds))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t0 = time.perf_counter()
        raw = [ds.load(i) for i in range(n)]
        t1 = time.perf_counter()
        for image, mask in raw:
            ds.transform(image, mask)
        t2 = time.perf_counter()
    finally:
        torch.set_num_threads(threads)
    return {"decode_ms_per_image": 1e3 * (t1 - t0) / n, "transform_ms_per_image": 1e3 * (t2 - t1) / n}


def loader_throughput(ds: Any, args: argparse.Namespace) -> dict[str, float]:
    loader = make_loader(
        ds, args.batch_size, shuffle=True, num_workers=args.workers, seed=args.seed, drop_last=True
    )
    per_epoch = len(loader)
    if per_epoch == 0:
        raise SystemExit(f"dataset of {len(ds)} images is smaller than one batch")
    t0 = time.perf_counter()
    it = iter(loader)
    next(it)
    startup = time.perf_counter() - t0
    seen, timed, t_start = 1, 0, None
    while timed < args.batches:
        try:
            next(it)
        except StopIteration:
            it = iter(loader)
            continue
        seen += 1
        if seen == args.warmup + 1:
            t_start = time.perf_counter()
        elif seen > args.warmup + 1:
            timed += 1
    elapsed = time.perf_counter() - t_start
    return {
        "startup_s": startup,
        "batch_s": elapsed / timed,
        "images_per_s": timed * args.batch_size / elapsed,
        "batches_timed": timed,
    }


def supernet_step(ds: Any, args: argparse.Namespace) -> dict[str, Any]:
    try:
        from gasgnn import SearchSpace, Supernet
    except Exception as e:  # the supernet is optional for this benchmark
        return {"available": False, "reason": f"import failed: {type(e).__name__}: {e}"}
    try:
        try:
            space = SearchSpace(input_size=tuple(args.crop), num_classes=ds.num_classes)
        except TypeError:
            space = SearchSpace(input_size=tuple(args.crop))
        net = Supernet(space)
        net.train()
        params = (
            list(net.weight_parameters()) if hasattr(net, "weight_parameters") else list(net.parameters())
        )
        opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
        x = torch.randn(args.batch_size, 3, *args.crop)
        y = torch.randint(0, ds.num_classes, (args.batch_size, *args.crop))

        def step(x: torch.Tensor, y: torch.Tensor) -> None:
            opt.zero_grad(set_to_none=True)
            out = net(x)
            loss = F.cross_entropy(out, y, ignore_index=ds.ignore_index)
            loss.backward()
            opt.step()

        log(f"supernet built ({sum(p.numel() for p in params) / 1e6:.2f} M weights); warm-up step")
        step(x, y)  # warm-up (allocations, autotuning)
        times = []
        for i in range(args.steps):
            t0 = time.perf_counter()
            step(x, y)
            times.append(time.perf_counter() - t0)
            log(f"step {i + 1}/{args.steps}: {times[-1]:.2f} s")
        step_s = sum(times) / len(times)
        # concurrent: the loader's workers feed the step loop, as in a real search
        loader = make_loader(
            ds, args.batch_size, shuffle=True, num_workers=args.workers, seed=args.seed, drop_last=True
        )
        it = iter(loader)
        step(*next(it))  # start-up excluded
        stall = 0.0
        t0 = time.perf_counter()
        for _ in range(args.steps):
            t = time.perf_counter()
            try:
                xb, yb = next(it)
            except StopIteration:
                it = iter(loader)
                xb, yb = next(it)
            stall += time.perf_counter() - t
            step(xb, yb)
        loop_s = (time.perf_counter() - t0) / args.steps
        log(f"concurrent loop: {loop_s:.2f} s/step, {stall / args.steps * 1e3:.1f} ms/step waiting for data")
        n_params = sum(p.numel() for p in params)
    except Exception as e:
        return {"available": False, "reason": f"supernet failed: {type(e).__name__}: {e}"}
    return {
        "available": True,
        "step_s": step_s,
        "step_min_s": min(times),
        "params": n_params,
        "concurrent_step_s": loop_s,
        "concurrent_data_stall_s": stall / args.steps,
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    try:
        ds, scale = build(args)
    except Exception as e:
        raise SystemExit(f"bench_data: cannot open the {args.dataset} dataset: {e}") from None
    result: dict[str, Any] = {
        "dataset": args.dataset,
        "root": str(getattr(ds, "root", None)),
        "split": args.split,
        "images": len(ds),
        "crop": list(args.crop),
        "scale_range": [round(s, 4) for s in scale],
        "batch_size": args.batch_size,
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    log(f"{args.dataset}: {len(ds)} images; single-process breakdown on {args.samples}")
    result["single_process"] = single_process_breakdown(ds, args.samples)
    log(f"loader: {args.workers} workers, {args.warmup} warm-up + {args.batches} timed batches")
    result["loader"] = loader_throughput(ds, args)
    if args.no_supernet:
        result["supernet"] = {"available": False, "reason": "--no-supernet"}
    else:
        result["supernet"] = supernet_step(ds, args)
    sn = result["supernet"]
    if sn.get("available"):
        result["ratio_data_per_batch_to_step"] = result["loader"]["batch_s"] / sn["step_s"]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)
    return result


def report(r: dict[str, Any]) -> None:
    sp, ld, sn = r["single_process"], r["loader"], r["supernet"]
    print(f"dataset     {r['dataset']} {r['split']} ({r['images']} images) root={r['root']}")
    print(
        f"transform   random scale {r['scale_range'][0]:.3g}..{r['scale_range'][1]:.3g}, "
        f"crop {r['crop'][0]}x{r['crop'][1]}, flip, normalise"
    )
    load = r.get("load_average_1min")
    busy = f", load average {load:.1f} at start" if load is not None else ""
    print(f"machine     {r['cpus']} CPUs, torch {r['torch']}{busy}")
    print(
        f"per image   decode {sp['decode_ms_per_image']:.1f} ms + "
        f"transform {sp['transform_ms_per_image']:.1f} ms (one process, one thread)"
    )
    print(
        f"loader      batch {r['batch_size']}, {r['workers']} workers: {ld['images_per_s']:.1f} images/s, "
        f"{1e3 * ld['batch_s']:.1f} ms/batch (start-up {ld['startup_s']:.2f} s)"
    )
    if sn.get("available"):
        print(f"supernet    {sn['params'] / 1e6:.2f} M weights, {sn['torch_threads']} torch threads")
        print(f"step        {1e3 * sn['step_s']:.0f} ms (fwd + CE + bwd + SGD, batch {r['batch_size']})")
        print(f"ratio       data/batch / step = {r['ratio_data_per_batch_to_step']:.3f}")
        print(
            f"concurrent  {1e3 * sn['concurrent_step_s']:.0f} ms/step with the loader running, "
            f"of which {1e3 * sn['concurrent_data_stall_s']:.1f} ms waiting for data"
        )
    else:
        print(f"supernet    unavailable ({sn['reason']})")


if __name__ == "__main__":
    main(sys.argv[1:])
