"""Everything a session lent a GPU should measure, in one command (no installs; under 8 min on an H200).

    PYTHONPATH=. python benchmarks/gpu_suite.py --out runs/gpu_suite [--dry-run] [--budget-s 450]

Sections, in order of importance (a section that fails is recorded with its error; the run goes on):

1. ``kernels``: ``pytest tests/kernels/test_kernels.py`` with the Triton kernels compiled (``TRITON_INTERPRET``
   unset) on the GPU.
2. ``search_step``: ``bench_search_step.py``: naive DARTS / per-edge / node-batched, eager vs CUDA graphs
   (gasgnn variants), fp32 vs AMP (bf16), batch 2, 8 and 16 at 180x240; peak memory at batch 2.
3. ``fps``: derived network (random genotype, seed 0) at batch 1, 360x480 and 720x960, ASPP and PPM
   heads, fp32 and fp16, eager and ``torch.compile`` (:func:`gasgnn.train.bench.benchmark`).
4. ``latency``: latency-table validation on the GPU (:func:`gasgnn.latency.measure.validate`: the table
   is measured, then random networks are compared with its predictions).

Writes ``DIR/gpu_suite.json`` and ``DIR/gpu_suite.md``. Sections past ``--budget-s`` are skipped and
say so. ``--dry-run`` runs every section on the CPU at tiny sizes (CI runs it, so the suite cannot rot).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
TINY = {"num_cells": 3, "num_nodes": 2, "reduction_cells": [1], "channels": 4}


def kernels(dry: bool, device: str) -> dict[str, Any]:
    env = dict(os.environ)
    if dry:
        env["TRITON_INTERPRET"] = "1"
        extra = ["-k", "validation"]
    else:
        env.pop("TRITON_INTERPRET", None)  # compiled kernels
        extra = []
    test = str(HERE.parent / "tests" / "kernels" / "test_kernels.py")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test, *extra]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=HERE.parent)
    tail = r.stdout.strip().splitlines()[-1:] if r.stdout.strip() else []
    return {"returncode": r.returncode, "summary": tail[0] if tail else r.stderr[-500:], "compiled": not dry}


def search_step(dry: bool, device: str, deadline: float) -> list[dict[str, Any]]:
    import bench_search_step

    if dry:
        common = ["--device", device, "--size", "32", "32", "--repeats", "1", "--warmup", "0",
                  "--space", json.dumps(TINY)]
        grid = [(2, False, False)]
    else:
        common = ["--device", device, "--size", "180", "240", "--repeats", "5", "--warmup", "2"]
        grid = [(b, amp, cg) for b in (2, 8, 16) for amp in (False, True) for cg in (False, True)]
    out = []
    for batch, amp, graphs in grid:
        cfg = {"batch": batch, "amp": amp, "cuda_graphs": graphs}
        if time.time() > deadline:
            out.append({**cfg, "skipped": "over the time budget"})
            continue
        argv = [*common, "--batch", str(batch)] + (["--amp"] if amp else []) + (["--cuda-graphs"] if graphs else [])
        # naive is the baseline of every row; under CUDA graphs it stays eager (it has no such option)
        variants = ["naive", "per_edge", "batched"]
        if dry or batch != 2 or graphs:  # peak memory: fresh subprocesses, batch 2 only
            argv.append("--no-memory")
        try:
            res = bench_search_step.main([*argv, "--variants", *variants])
            out.append({**cfg, **res})
        except Exception as e:  # noqa: BLE001  (record and go on)
            out.append({**cfg, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]})
    return out


def fps(dry: bool, device: str, deadline: float) -> list[dict[str, Any]]:
    from gasgnn import SearchSpace
    from gasgnn.genotype import random_genotype
    from gasgnn.models import GASNet
    from gasgnn.train import benchmark

    space = SearchSpace(**TINY) if dry else SearchSpace()
    g = random_genotype(space, torch.Generator().manual_seed(0))
    models = {h: GASNet(g, space, head=h).eval() for h in ("aspp", "ppm")}
    sizes = [(32, 32)] if dry else [(360, 480), (720, 960)]
    dtypes = ["fp32"] if dry else ["fp32", "fp16"]
    backends = ("eager",) if dry else ("eager", "compile")
    kw = dict(warmup=1, iters=2, rounds=1) if dry else dict(warmup=10, iters=50, rounds=5)
    out = []
    for dtype in dtypes:
        if time.time() > deadline:
            out.append({"dtype": dtype, "skipped": "over the time budget"})
            continue
        res = benchmark(models, sizes, backends, dtype=dtype, device=device, progress=False, **kw)
        out.append({"dtype": dtype, **res})
    return out


def latency(dry: bool, device: str, deadline: float) -> dict[str, Any]:
    from gasgnn import SearchSpace
    from gasgnn.latency import LatencyTable, validate

    if time.time() > deadline:
        return {"skipped": "over the time budget"}
    space = SearchSpace(**TINY, input_size=(32, 32)) if dry else SearchSpace()
    table = LatencyTable(device=device, repeats=2 if dry else 20, warmup=1 if dry else 5)
    kw = dict(n=2, warmup=0, repeats=1, rounds=1) if dry else dict(n=10, repeats=10, rounds=2)
    return validate(table, space, None, progress=False, **kw)


def _md(res: dict[str, Any]) -> str:
    lines = [f"# GPU suite: {res['device_name']} ({res['date']}, torch {res['torch']}, {res['wall_s']:.0f} s)", ""]
    k = res["sections"].get("kernels", {})
    lines += ["## Kernel tests", "", f"compiled={k.get('compiled')}: {k.get('summary', k.get('error'))}", ""]
    lines += ["## Search step (arch + weights), 180x240", "",
              "| batch | amp | cuda graphs | variant | median s | speed-up vs naive | peak MiB |",
              "|---|---|---|---|---|---|---|"]
    for row in res["sections"].get("search_step", []):
        if "variants" not in row:
            lines.append(f"| {row.get('batch')} | {row.get('amp')} | {row.get('cuda_graphs')} | "
                         f"{row.get('skipped') or row.get('error', '')[:80]} | | | |")
            continue
        for v, r in row["variants"].items():
            mem = f"{r['peak_mib']:.0f}" if "peak_mib" in r else "-"
            lines.append(f"| {row['batch']} | {row['amp']} | {row['cuda_graphs']} | {v} | {r['median_s']:.4f} | "
                         f"{r['speedup_vs_first']:.2f} | {mem} |")
    lines += ["", "## Derived network, batch 1", "", "| dtype | model | size | backend | median ms | FPS |",
              "|---|---|---|---|---|---|"]
    for block in res["sections"].get("fps", []):
        for r in block.get("results", []):
            lines.append(f"| {block['dtype']} | {r['model']} | {r['size'][0]}x{r['size'][1]} | {r['backend']} | "
                         f"{r['latency_ms']['median']:.2f} | {r['fps']:.1f} |")
    lat = res["sections"].get("latency", {})
    lines += ["", "## Latency-table validation", ""]
    for r in lat.get("sizes", []) if isinstance(lat, dict) else []:
        lines.append(f"- {r['input_size'][0]}x{r['input_size'][1]}: pearson {r['pearson']:.3f}, "
                     f"spearman {r['spearman']:.3f}, MAPE {r['mape']:.1f}%, bias {r['bias']:+.1f}%")
    for name, sec in res["sections"].items():
        if isinstance(sec, dict) and "error" in sec:
            lines.append(f"- section {name} failed: {sec['error']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="directory for gpu_suite.json and gpu_suite.md")
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes (CI)")
    p.add_argument("--budget-s", type=float, default=450.0, help="skip sections started after this many seconds")
    args = p.parse_args(argv)
    device = "cpu" if args.dry_run else "cuda"
    if not args.dry_run and not torch.cuda.is_available():
        p.error("no CUDA device; use --dry-run to check the suite on the CPU")
    t0 = time.time()
    deadline = t0 + args.budget_s
    args.out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu (dry run)"
    res: dict[str, Any] = {"device_name": name, "dry_run": args.dry_run, "torch": torch.__version__,
                           "date": time.strftime("%Y-%m-%d %H:%M:%S"), "sections": {}}
    sections = {"kernels": lambda: kernels(args.dry_run, device),
                "search_step": lambda: search_step(args.dry_run, device, deadline),
                "fps": lambda: fps(args.dry_run, device, deadline),
                "latency": lambda: latency(args.dry_run, device, deadline)}
    for key, fn in sections.items():
        t = time.time()
        try:
            res["sections"][key] = fn()
        except Exception as e:  # noqa: BLE001  (one broken section must not lose the others)
            res["sections"][key] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]}
        res.setdefault("section_s", {})[key] = time.time() - t
        (args.out / "gpu_suite.json").write_text(json.dumps(res, indent=2, default=str))  # partial results survive
    res["wall_s"] = time.time() - t0
    (args.out / "gpu_suite.json").write_text(json.dumps(res, indent=2, default=str))
    (args.out / "gpu_suite.md").write_text(_md(res))
    print(_md(res))
    return res


if __name__ == "__main__":
    main()
