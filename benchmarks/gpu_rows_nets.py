"""The GPU suite's rows about whole networks: derived-network FPS, the latency table, a short real search.

See ``benchmarks/gpu_rows.py`` for the row contract (``fn(ctx) -> dict`` of figures with a ``summary``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from gpu_common import TINY, Ctx, RowFailed, repo_env, run_cmd


def _genotypes(ctx: Ctx, space: Any) -> tuple[Any, Any]:
    """The derived network to time (``--genotype``, else a random genotype of seed 0) and the hand-designed
    reference (``--reference``, a :mod:`gasgnn.genotype.references` name)."""
    import torch

    from gasgnn.genotype import random_genotype
    from gasgnn.genotype.references import reference_genotype, resolve_genotype

    if ctx.genotype and not ctx.dry:
        g = resolve_genotype(ctx.genotype, space)
    else:
        g = random_genotype(space, torch.Generator().manual_seed(0))
    return g, reference_genotype(ctx.reference, space)


def fps(ctx: Ctx, size: tuple[int, int], classes: int, dtype: str, backend: str) -> dict[str, Any]:
    """Batch-1 latency and FPS of the derived network (ASPP and PPM heads) beside the hand-designed reference,
    channels_last with cudnn.benchmark, timed interleaved by :func:`gasgnn.train.benchmark`. The compiled rows
    time the ASPP network and the reference only (each compile takes tens of seconds)."""
    import torch

    from gasgnn import SearchSpace
    from gasgnn.models import GASNet
    from gasgnn.train import benchmark

    run_size = ctx.pick(tuple(size), (32, 64))
    space = SearchSpace(num_classes=classes, input_size=run_size, **(TINY if ctx.dry else {}))
    g, ref = _genotypes(ctx, space)
    ref_name = f"{ctx.reference}_aspp"
    models = {"gas_aspp": GASNet(g, space, head="aspp")}
    if backend == "eager":
        models["gas_ppm"] = GASNet(g, space, head="ppm")
    models[ref_name] = GASNet(ref, space, head="aspp")
    torch.backends.cudnn.benchmark = not ctx.dry
    run_dtype = "bf16" if ctx.dry and dtype == "fp16" else dtype  # fp16 convolutions need CUDA
    res = benchmark({k: m.eval() for k, m in models.items()}, [run_size], (backend,), dtype=run_dtype,
                    channels_last=True, device=ctx.device, warmup=ctx.pick(10, 1), iters=ctx.pick(50, 2),
                    rounds=ctx.pick(5, 1), baseline=ref_name, progress=False)
    figs: dict[str, Any] = {"size": list(size), "run_size": list(run_size), "classes": classes, "dtype": run_dtype,
                            "backend": backend, "channels_last": True, "genotype": ctx.genotype or "random seed 0",
                            "reference": ref_name, "networks": {}}
    for r in res["results"]:
        figs["networks"][r["model"]] = {
            "median_ms": r["latency_ms"]["median"], "p10_ms": r["latency_ms"]["p10"],
            "p90_ms": r["latency_ms"]["p90"], "fps": r["fps"], "gflops": r["gflops"], "params": r["params"],
            "peak_memory_mb": r["peak_memory_mb"]}
    for c in res["comparisons"]:  # speedup: reference median / this network's median
        figs["networks"][c["model"]]["speedup_vs_reference"] = c["speedup"]
    if res["skipped"]:
        raise RowFailed("; ".join(s["reason"] for s in res["skipped"]), figs)
    figs["summary"] = ", ".join(f"{k} {v['fps']:.0f} FPS" for k, v in figs["networks"].items())
    return figs


def validate_spanning(table: Any, space: Any, n: int, near_n: int, **kw: Any) -> dict[str, Any]:
    """The suite's one call into the latency package's validation: ``n`` networks spanning the space's
    predicted latency range and ``near_n`` near its median, each timed twice (the machine's retest)."""
    from gasgnn.latency import validate

    return validate(table, space, sizes=[tuple(space.input_size)], n=n, near_n=near_n, progress=False, **kw)


def latency_table(ctx: Ctx) -> dict[str, Any]:
    """A latency table measured on the device at 720x960, validated on networks spanning its latency range."""
    from gasgnn import SearchSpace
    from gasgnn.latency import LatencyTable

    size = ctx.pick((720, 960), (32, 32))
    space = SearchSpace(input_size=size, **(TINY if ctx.dry else {}))
    path = ctx.work / f"latency_{size[0]}x{size[1]}.json"
    path.unlink(missing_ok=True)  # a fresh table: one left by an earlier run may carry other metadata
    t = time.perf_counter()
    table = LatencyTable.measure(space, device=ctx.device, input_size=size, repeats=ctx.pick(20, 2),
                                 warmup=ctx.pick(5, 1), progress=False, path=path, heads=("aspp",))
    measure_s = time.perf_counter() - t
    res = validate_spanning(table, space, n=ctx.pick(8, 3), near_n=ctx.pick(4, 2), warmup=ctx.pick(3, 1),
                            repeats=ctx.pick(10, 2), rounds=ctx.pick(2, 1))
    r = res["sizes"][0]
    meas, pred = r["measured_ms"], r["predicted_ms"]
    figs = {"size": list(size), "entries": len(table), "table_s": measure_s, "table": str(path), "networks": len(meas),
            **{k: r.get(k) for k in ("spearman", "kendall", "mape", "within_10", "range_ratio", "retest_spearman",
                                     "retest_mape", "band_spearman", "band_retest_spearman", "band_mape")},
            "verdict": r["verdict"], "measured_ms": meas, "predicted_ms": pred,
            "measured_range_ms": [min(meas), max(meas)], "predicted_range_ms": [min(pred), max(pred)]}
    figs["summary"] = (f"{len(meas)} networks {min(meas):.2f}-{max(meas):.2f} ms: Spearman {r['spearman']:.2f} "
                       f"(retest {r['retest_spearman']:.2f}), MAPE {r['mape']:.1f} %, "
                       f"{100 * r['within_10']:.0f} % within 10 %; {r['verdict']['status']}")
    return figs


def _camvid(ctx: Ctx) -> Path | None:
    """The CamVid pack (``--camvid``, else ``$GASGNN_CAMVID``) when it holds a CamVid tree."""
    spec = ctx.camvid or os.environ.get("GASGNN_CAMVID")
    if spec and (Path(spec) / "train.txt").is_file():
        return Path(spec)
    return None


def _last_json(text: str) -> dict[str, Any]:
    """The JSON object a command printed last (``--json`` output follows progress lines)."""
    start = text.rfind("\n{")
    return json.loads(text[start + 1 if start >= 0 else text.index("{"):])


def short_search(ctx: Ctx) -> dict[str, Any]:
    """``gasgnn search`` for 20 bi-level steps (2 epochs x 10), a ``--resume`` for a third epoch from the
    checkpoint, then ``gasgnn derive`` under 90 % of the searched network's predicted latency: each a
    subprocess, on the CamVid pack when present, else on the built-in synthetic dataset."""
    import torch

    from gasgnn import SearchSpace
    from gasgnn.data import CAMVID_CLASSES, PACK_MANIFEST, SYNTH_CLASSES
    from gasgnn.latency import LatencyTable

    root = _camvid(ctx)
    size = ctx.pick((360, 480), (32, 32))
    classes = len(CAMVID_CLASSES if root else SYNTH_CLASSES)
    space_kw = TINY if ctx.dry else {}
    space = SearchSpace(input_size=size, num_classes=classes, **space_kw)
    out, table_path = ctx.work / "search", ctx.work / "search_latency.json"
    table_path.unlink(missing_ok=True)
    t = time.perf_counter()
    LatencyTable.measure(space, device=ctx.device, input_size=size, repeats=ctx.pick(10, 2), warmup=ctx.pick(3, 1),
                         progress=False, path=table_path, heads=("aspp",))
    table_s = time.perf_counter() - t
    if root:
        data = ["--data", "camvid", "--root", str(root)]
    else:
        data = ["--data", "synthetic", "--data-arg", f"num_images={ctx.pick(64, 8)}",
                "--data-arg", f"size=[{size[0]},{size[1]}]"]
    space_args = ["--input-size", str(size[0]), str(size[1]), "--num-classes", str(classes)]
    if ctx.dry:
        space_args += ["--num-cells", "3", "--num-nodes", "2", "--reduction-cells", "1", "--channels", "4"]
    steps = ctx.pick(10, 2)
    common = [sys.executable, "-m", "gasgnn", "search", *space_args, *data, "--out", str(out),
              "--latency-table", str(table_path), "--warmup-epochs", "0", "--steps-per-epoch", str(steps),
              "--batch-size", str(ctx.pick(8, 2)), "--crop", *map(str, ctx.pick((180, 240), (32, 32))),
              "--device", ctx.device, "--workers", str(ctx.pick(4, 0)), "--threads", str(torch.get_num_threads()),
              "--omp-wait", "default", "--no-figures", "--json"]
    env = repo_env()
    figs: dict[str, Any] = {"data": f"camvid pack {root}" if root else "synthetic (no CamVid pack found)",
                            "size": list(size), "steps": 2 * steps, "resumed_steps": steps, "table_s": table_s}
    if root and (root / PACK_MANIFEST).is_file():
        manifest = json.loads((root / PACK_MANIFEST).read_text())
        figs["pack"] = {k: manifest.get(k) for k in ("quality", "bytes", "image_mad", "splits")}
    try:
        t = time.perf_counter()
        first = _last_json(run_cmd([*common, "--epochs", "2", "--overwrite"], env=env))
        figs["search_s"] = time.perf_counter() - t
        if not (out / "checkpoint.pt").is_file():
            raise RuntimeError(f"no checkpoint.pt in {out} after the first search")
        t = time.perf_counter()
        second = _last_json(run_cmd([*common, "--epochs", "3", "--resume", "--allow-changes"], env=env))
        figs["resume_s"] = time.perf_counter() - t
        figs["predicted_ms"] = second["predicted_latency_ms"]
        figs["predicted_ms_after_20_steps"] = first["predicted_latency_ms"]
        summary = json.loads((out / "summary.json").read_text())
        figs.update(epochs=summary.get("epochs"), supernet_miou=summary.get("supernet_miou"))
        target = 0.9 * second["predicted_latency_ms"]
        t = time.perf_counter()
        derived = _last_json(run_cmd([sys.executable, "-m", "gasgnn", "derive", str(out), "--target-ms",
                                      f"{target:.6g}", "--out", str(ctx.work / "derived.json"), "--overwrite",
                                      "--json"], env=env))
        figs["derive_s"] = time.perf_counter() - t
        figs.update(derived_ms=derived["predicted_ms"], derived_target_ms=target,
                    derived_changed_edges=derived["changed_edges"])
    except RuntimeError as e:
        raise RowFailed(str(e), figs) from None
    figs["summary"] = (f"{figs['data'].split(' (')[0]}: {2 * steps}+{steps} steps in {figs['search_s']:.0f}+"
                       f"{figs['resume_s']:.0f} s, supernet mIoU {figs['supernet_miou'] or 0:.3f}, derived "
                       f"{figs['derived_ms']:.2f} ms (target {target:.2f})")
    return figs
