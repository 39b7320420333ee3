"""``gasgnn export``: export a network to ONNX and check it against ONNX Runtime."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gasgnn.commands._common import add_model_args, emit_json
from gasgnn.commands._config import add_job_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a network to ONNX (with an ONNX Runtime parity check)",
        description=(
            "Exports a network (a checkpoint, or a genotype with optional --weights) to ONNX in eval mode, "
            "then runs the same random input through PyTorch and ONNX Runtime and reports the largest "
            "absolute difference of the logits (fails above --atol)."
        ),
    )
    a, D = p.add_argument, " (default: %(default)s)"
    add_model_args(p, "weights (default: random weights)")
    a("--num-classes", type=int, default=None, help="with --genotype: classes (default: the genotype's)")
    a("--format", default="onnx", choices=["onnx"], help="export format" + D)
    a("--out", type=Path, default=Path("model.onnx"), help="output file" + D)
    a("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
      help="input size the graph is fixed to (default: the genotype space's input size)")
    a("--opset", type=int, default=17, help="ONNX opset" + D)
    a("--dynamic-batch", action="store_true", help="dynamic batch dimension")
    a("--atol", type=float, default=1e-4, help="largest accepted |torch - onnxruntime|" + D)
    a("--no-check", action="store_true", help="skip the ONNX Runtime parity check")
    a("--json", action="store_true", help="print the result as JSON")
    add_job_args(p, run_dir=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gasgnn.genotype import Genotype
    from gasgnn.models import load_model
    from gasgnn.runner import check_out_path
    from gasgnn.train import export_onnx, onnx_parity

    check_out_path(args.out, "--out", is_dir=False)
    if args.out.exists() and not args.overwrite:  # never replace a file the user did not name for this
        raise ValueError(f"--out {args.out} exists; pass --overwrite to replace it, or choose another --out")
    if args.size is not None and min(args.size) < 1:
        raise ValueError(f"--size: height and width must be >= 1, got {args.size[0]} {args.size[1]}")
    if args.checkpoint is not None:
        model, spec = load_model(checkpoint=args.checkpoint, head=args.head)
    else:
        from gasgnn.genotype import resolve_genotype

        model, spec = load_model(genotype=resolve_genotype(args.genotype), weights=args.weights,
                                 num_classes=args.num_classes, head=args.head,
                                 head_channels=args.head_channels)
    size = args.size
    if size is None:
        g = Genotype.from_dict(spec["genotype"]) if spec.get("kind") == "gasnet" else None
        size = list(g.space.input_size) if g is not None and g.space is not None else [360, 480]
    path = export_onnx(model, args.out, size=size, opset=args.opset, dynamic_batch=args.dynamic_batch)
    res = {"out": str(path), "format": args.format, "size": list(size), "opset": args.opset,
           "dynamic_batch": args.dynamic_batch, "head": spec.get("head"), "bytes": path.stat().st_size,
           "max_abs_diff": None, "atol": args.atol, "parity_ok": None}
    if not args.no_check:
        diff = onnx_parity(model, path, size=size, batch=2 if args.dynamic_batch else 1)
        res.update(max_abs_diff=diff, parity_ok=diff <= args.atol)
    if args.json:
        emit_json(res)
    else:
        print(f"exported {path} ({res['bytes'] / 1e6:.2f} MB, input 1x3x{size[0]}x{size[1]}, "
              f"opset {args.opset})")
        if res["max_abs_diff"] is not None:
            verdict = "OK" if res["parity_ok"] else "FAILED"
            print(f"ONNX Runtime parity: max |torch - onnxruntime| = {res['max_abs_diff']:.3g} "
                  f"(atol {args.atol:g}) {verdict}")
    if res["parity_ok"] is False:
        print(f"gasgnn export: parity check failed: {res['max_abs_diff']:.3g} > {args.atol:g}",
              file=sys.stderr)
        return 1
    return 0
