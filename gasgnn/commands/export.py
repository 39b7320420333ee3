"""``gasgnn export``: export a network to ONNX (checked against ONNX Runtime), or as a pretrained directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gasgnn.commands._common import add_model_args, card_drawer, emit_json
from gasgnn.commands._config import add_job_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a network to ONNX (with an ONNX Runtime parity check) or as a pretrained directory",
        description=(
            "Exports a network (a checkpoint, or a genotype with optional --weights). --format onnx (the "
            "default) writes an ONNX graph in eval mode, then runs the same random input through PyTorch and "
            "ONNX Runtime and reports the largest absolute difference of the logits (fails above --atol). "
            "--format pretrained writes the directory that GASNet.from_pretrained loads (genotype.json, "
            "model.safetensors, config.json and a README.md model card; needs pip install 'gasgnn[hub]'); the "
            "card takes what the checkpoint knows (dataset, classes, mIoU), the latency of --latency-table "
            "and any --meta field."
        ),
    )
    a, D = p.add_argument, " (default: %(default)s)"
    add_model_args(p, "weights (default: random weights)")
    a("--num-classes", type=int, default=None, help="with --genotype: classes (default: the genotype's)")
    a("--format", default="onnx", choices=["onnx", "pretrained"], help="export format" + D)
    a("--out", type=Path, default=None,
      help="output file (onnx; default: model.onnx) or directory (pretrained; default: pretrained)")
    a("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
      help="input size the graph is fixed to (default: the genotype space's input size)")
    a("--opset", type=int, default=17, help="ONNX opset" + D)
    a("--dynamic-batch", action="store_true", help="dynamic batch dimension")
    a("--atol", type=float, default=1e-4, help="largest accepted |torch - onnxruntime|" + D)
    a("--no-check", action="store_true", help="skip the ONNX Runtime parity check")
    a("--json", action="store_true", help="print the result as JSON")
    g = p.add_argument_group("model card (--format pretrained)")
    g.add_argument("--latency-table", type=Path, default=None, metavar="FILE",
                   help="latency table the card names: its device, backend, content hash and predicted latency")
    g.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                   help="a card field (dataset, miou, device, latency_backend, measured_latency_ms, input_size, "
                        "...; value parsed as JSON when possible, e.g. --meta miou=0.68 --meta input_size=[360,480]); "
                        "overrides the checkpoint's and the table's; repeatable")
    g.add_argument("--no-drawing", action="store_true", help="no cell drawing beside the card")
    add_job_args(p, run_dir=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gasgnn.genotype import Genotype
    from gasgnn.models import load_model, spec_memory_check
    from gasgnn.runner import check_out_path
    from gasgnn.train import export_onnx, onnx_parity

    if args.format == "pretrained":
        return _pretrained(args)
    if args.latency_table is not None or args.meta or args.no_drawing:
        raise ValueError("--latency-table, --meta and --no-drawing go with --format pretrained")
    args.out = args.out or Path("model.onnx")
    check_out_path(args.out, "--out", is_dir=False)
    if args.out.exists() and not args.overwrite:  # never replace a file the user did not name for this
        raise ValueError(f"--out {args.out} exists; pass --overwrite to replace it, or choose another --out")
    if args.size is not None and min(args.size) < 1:
        raise ValueError(f"--size: height and width must be >= 1, got {args.size[0]} {args.size[1]}")
    src = f"--checkpoint {args.checkpoint}" if args.checkpoint is not None else f"--genotype {args.genotype}"
    check = spec_memory_check([args.size] if args.size is not None else None, "cpu",
                              f"--size (or the network of {src})", batch=2 if args.dynamic_batch else 1)
    if args.checkpoint is not None:
        model, spec = load_model(checkpoint=args.checkpoint, head=args.head, check=check)
    else:
        from gasgnn.genotype import resolve_genotype

        model, spec = load_model(genotype=resolve_genotype(args.genotype), weights=args.weights,
                                 num_classes=args.num_classes, head=args.head,
                                 head_channels=args.head_channels, check=check)
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


def _meta_args(items: list[str]) -> dict[str, Any]:
    from gasgnn.commands._data import _data_value

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--meta expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = _data_value(v)
    return out


def _pretrained(args: argparse.Namespace) -> int:
    """``--format pretrained``: the directory of GASNet.save_pretrained, with the card's metadata."""
    from gasgnn.genotype import Genotype, resolve_genotype
    from gasgnn.models import GASNet, load_model, save_pretrained_from_checkpoint
    from gasgnn.runner import check_out_path, table_sha1

    onnx_only = [f for f, on in (("--size", args.size is not None), ("--dynamic-batch", args.dynamic_batch),
                                 ("--no-check", args.no_check)) if on]
    if onnx_only:
        raise ValueError(f"{onnx_only[0]} goes with --format onnx, not pretrained")
    out = args.out or Path("pretrained")
    check_out_path(out, "--out", is_dir=True)
    meta = _meta_args(args.meta)
    if args.checkpoint is not None:
        model, spec = load_model(checkpoint=args.checkpoint, head=args.head)
    else:
        model, spec = load_model(genotype=resolve_genotype(args.genotype), weights=args.weights,
                                 num_classes=args.num_classes, head=args.head, head_channels=args.head_channels)
    if not isinstance(model, GASNet):
        raise ValueError(f"--format pretrained: only GASNet networks can be saved (this is a {spec.get('kind')} "
                         f"network)")
    known: dict[str, Any] = {}
    if args.latency_table is not None:
        from gasgnn.latency import LatencyTable

        table = LatencyTable.load(args.latency_table)
        g = Genotype.from_dict(spec["genotype"])
        try:
            pred = table.predict(g, head=model.head_name, space=model.space, head_channels=model.head_channels)
        except ValueError as e:
            raise ValueError(f"--latency-table {args.latency_table}: {e}") from None
        known = {"device": table.meta.get("device_name") or table.meta.get("device"),
                 # tables written before backends existed were timed in eager PyTorch
                 "latency_backend": table.meta.get("backend", "torch"), "latency_table_sha1": table_sha1(table),
                 "predicted_latency_ms": float(pred), "input_size": list(model.space.input_size)}
    known.update(meta)
    draw = None if args.no_drawing else card_drawer()
    if args.checkpoint is not None:
        path = save_pretrained_from_checkpoint(args.checkpoint, out, metadata=known, draw=draw,
                                               overwrite=args.overwrite)
    else:
        path = model.save_pretrained(out, metadata=known, draw=draw, overwrite=args.overwrite)
    from gasgnn.models import read_pretrained_config

    cfg = read_pretrained_config(path)
    res = {"out": str(path), "format": "pretrained", "files": sorted(p.name for p in path.iterdir()),
           "genotype_sha1": cfg["genotype_sha1"], "head": cfg["head"], "aux": cfg["aux"],
           "metadata": cfg["metadata"]}
    if args.json:
        emit_json(res)
    else:
        print(f"wrote {path}/ ({', '.join(res['files'])}); genotype sha1 {res['genotype_sha1']}; load it with "
              f"GASNet.from_pretrained('{path}')")
    return 0
