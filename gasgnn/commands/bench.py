"""``gasgnn bench``: batch-1 latency, FPS, FLOPs and memory of a derived network (ASPP vs PPM)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gasgnn.commands._common import emit_json
from gasgnn.commands._config import add_job_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="latency / FPS / FLOPs of a derived network, ASPP and PPM heads side by side",
        description=(
            "Times batch-1 inference of a genotype's GASNet with each requested head, interleaved in one "
            "process for a fair comparison: warm-up, CUDA synchronisation, median latency with p10/p90 "
            "and IQR, FPS, parameters, FLOPs and peak CUDA memory. Backends are the latency backends "
            "(--backend torch onnxruntime torch-compile, or one you registered), so a network is timed on the "
            "runtime its latency table was measured on; unavailable ones are skipped with a message."
        ),
    )
    a, D = p.add_argument, " (default: %(default)s)"
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--genotype", help="genotype JSON file or reference name (hand_sep, hand_light)")
    src.add_argument("--checkpoint", type=Path, help="training checkpoint (its head and classes)")
    a("--head", nargs="+", default=["aspp", "ppm"], help="heads to compare (with --genotype)" + D)
    a("--head-channels", type=int, default=128, help="head width (with --genotype)" + D)
    a("--num-classes", type=int, default=None, help="classes (default: the genotype space's)")
    a("--sizes", type=int, nargs="+", default=None, metavar="H W",
      help="input sizes as H W pairs, e.g. --sizes 360 480 720 960 (default: the genotype space's)")
    a("--dtype", choices=["fp32", "fp16", "bf16"], default="fp32", help="precision; fp16 needs CUDA" + D)
    a("--channels-last", action="store_true", help="NHWC memory format")
    a("--backend", nargs="+", default=None, metavar="NAME",
      help="latency backends to time: torch (eager), onnxruntime (fp32), torch-compile, or a registered one "
           "(default: torch)")
    a("--compile", action="store_true", help="also time torch.compile (= adding torch-compile to --backend)")
    a("--onnxruntime", action="store_true", help="also time ONNX Runtime (= adding onnxruntime to --backend)")
    a("--no-eager", action="store_true", help="skip the eager PyTorch backend (torch)")
    a("--device", default="auto", help="auto, cpu, cuda, ..." + D)
    a("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    a("--warmup", type=int, default=10, help="untimed calls per network" + D)
    a("--iters", type=int, default=50, help="timed calls per network" + D)
    a("--rounds", type=int, default=5, help="interleaving rounds" + D)
    a("--out", type=Path, default=None, help="also write the JSON report here")
    a("--no-progress", action="store_true", help="no progress bar")
    a("--json", action="store_true", help="print the report as JSON")
    add_job_args(p, threads=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from gasgnn.genotype import Genotype
    from gasgnn.models import load_model, spec_memory_check
    from gasgnn.train import benchmark
    from gasgnn.utils import json_safe, write_json

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.sizes is not None and len(args.sizes) % 2:
        raise ValueError(f"--sizes takes H W pairs, got {len(args.sizes)} numbers")
    sizes = None if args.sizes is None else [(args.sizes[i], args.sizes[i + 1]) for i in range(0, len(args.sizes), 2)]
    if sizes is not None and min(min(s) for s in sizes) < 1:
        raise ValueError(f"--sizes: heights and widths must be >= 1, got {args.sizes}")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    src = f"--checkpoint {args.checkpoint}" if args.checkpoint is not None else f"--genotype {args.genotype}"
    flags = f"--sizes (or the network of {src})"
    if args.checkpoint is not None:
        model, spec = load_model(checkpoint=args.checkpoint, check=spec_memory_check(sizes, device, flags))
        models = {spec.get("head") or "model": model}
        g = Genotype.from_dict(spec["genotype"]) if spec.get("kind") == "gasnet" else None
    else:
        from gasgnn.genotype import resolve_genotype

        g = resolve_genotype(args.genotype)
        sizes = sizes or [tuple(g.space.input_size) if g.space is not None else (360, 480)]
        models = {h: load_model(genotype=g, num_classes=args.num_classes, head=h, head_channels=args.head_channels,
                                check=spec_memory_check(sizes, device, flags))[0] for h in dict.fromkeys(args.head)}
    if sizes is None:
        sizes = [tuple(g.space.input_size)] if g is not None and g.space is not None else [(360, 480)]
    from gasgnn.train import backend_name

    backends = [backend_name(b) for b in (args.backend or ["torch"])]
    backends += (["torch-compile"] if args.compile else []) + (["onnxruntime"] if args.onnxruntime else [])
    backends = [b for b in dict.fromkeys(backends) if not (args.no_eager and b == "torch")]
    if not backends:
        raise ValueError("no backend left (--no-eager without another --backend, --compile or --onnxruntime)")
    report = benchmark(models, sizes, backends, args.dtype, args.channels_last, device, args.warmup,
                       args.iters, args.rounds, progress=not args.no_progress)
    report["genotype"] = args.genotype or str(args.checkpoint)
    report = json_safe(report)
    if args.out:
        write_json(args.out, report)
    for s in report["skipped"]:
        print(f"skipped {s['backend']} at {s['size'][0]}x{s['size'][1]}: {s['reason']}", file=sys.stderr)
    if args.json:
        emit_json(report)
        return 0
    env = report["environment"]
    print(f"{env['device_name']} ({env['device']}), torch {env['torch']}, {env['threads']} threads, "
          f"{args.dtype}{', channels_last' if args.channels_last else ''}, batch 1")
    print(f"{'model':<8} {'size':>9} {'backend':<11} {'params(M)':>9} {'GFLOPs':>7} {'median ms':>9} "
          f"{'p10-p90 ms':>15} {'FPS':>7} {'mem MiB':>8}")
    for r in report["results"]:
        lat = r["latency_ms"]
        mem = f"{r['peak_memory_mb']:.1f}" if r["peak_memory_mb"] is not None else "n/a"
        print(f"{r['model']:<8} {r['size'][0]:>4}x{r['size'][1]:<4} {r['backend']:<11} "
              f"{r['params'] / 1e6:>9.3f} {r['gflops']:>7.2f} {lat['median']:>9.2f} "
              f"{lat['p10']:>7.2f}-{lat['p90']:<7.2f} {r['fps']:>7.1f} {mem:>8}")
    for c in report["comparisons"]:
        print(f"{c['model']} vs {c['baseline']} at {c['size'][0]}x{c['size'][1]} ({c['backend']}): "
              f"{c['speedup']:.3f}x ({c['latency_change_pct']:+.1f}% latency)")
    return 0
