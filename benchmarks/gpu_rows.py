"""The rows of the GPU suite (``benchmarks/gpu_suite.py``): one measurement each, run in a process of its own.

A row is a function ``fn(ctx) -> dict`` of figures (JSON-ready, with a one-line ``summary``); it raises
:class:`~gpu_common.RowFailed` (figures kept) or any exception for a failure and
:class:`~gpu_common.RowSkipped` when it cannot run here. :data:`ROWS` lists them in the order the suite runs
them: the most valuable numbers first, compiling last. Rows import torch and gasgnn inside, so the suite can
list and record rows where torch itself is broken.

Expected seconds (``Row.expected_s``, an H200) are estimates, not measurements: no GPU has run the suite
yet. Each is the row's work priced from what is known of an H200 and of this code on the CPU: a forked row
starts in ~0.1 s (the suite imported torch and gasgnn once, before forking); a search step of the 12-cell
supernet at batch 8 is launch-bound on a GPU (naive DARTS: ~40k kernels a step at ~5 us = ~0.2 s; node-batched
~4x fewer), so a row of 1 + 3 warm-up + 10 timed + 1 profiled steps with cuDNN autotuning is ~10 s;
a batch-1 FPS row is ~60 calls of 3 networks at 2-15 ms plus autotuning, ~8 s; the Triton kernel tests
compile ~30 kernel variants at ~1 s each; Inductor compiles a 12-cell network in ~30-60 s on 16 cores and the
search supernet's two step graphs in minutes. The first GPU run records each row's real ``seconds`` beside
``expected_s`` in ``gpu_suite.json``: replace the estimates with those.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from gpu_common import (
    REPO,
    SMALL,
    TINY,
    Ctx,
    Row,
    RowFailed,
    count_launches,
    peak_bandwidth,
    repo_env,
    stream_cmd,
    sync,
    time_calls,
)
from gpu_rows_nets import fps, latency_table, short_search

# ----------------------------------------------------------------------------------------------
# preflight and kernels


def preflight(ctx: Ctx) -> dict[str, Any]:
    """Versions, the device, its free memory and peak bandwidth; fails when there is no working CUDA device."""
    import importlib
    import platform

    import torch

    figs: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                            "cuda": torch.version.cuda, "triton_interpret": os.environ.get("TRITON_INTERPRET")}
    for mod in ("triton", "onnxruntime", "torch_geometric"):
        try:
            figs[mod] = importlib.import_module(mod).__version__
        except Exception as e:  # recorded: the rows that need it fail on their own
            figs[mod] = f"unavailable ({type(e).__name__}: {str(e)[:120]})"
    import gasgnn
    import gasgnn.latency
    import gasgnn.search
    import gasgnn.train  # noqa: F401  (every row needs these to import)

    figs["gasgnn"] = gasgnn.__version__
    if ctx.dry:
        figs.update(device_name="cpu (dry run)", cpu_count=os.cpu_count())
        figs["summary"] = f"dry run on the CPU, torch {torch.__version__}, triton {figs['triton']}"
        return figs
    if not torch.cuda.is_available():
        raise RuntimeError(f"no CUDA device: torch {torch.__version__} (CUDA {torch.version.cuda}) sees none; "
                           "use --dry-run on a machine without a GPU")
    torch.ones(1, device="cuda").add_(1)
    torch.cuda.synchronize()  # the context works and runs a kernel
    p = torch.cuda.get_device_properties(0)
    free, total = torch.cuda.mem_get_info()
    figs.update(device_name=p.name, capability=f"{p.major}.{p.minor}", sm_count=p.multi_processor_count,
                total_mib=total / 2**20, free_mib=free / 2**20, cudnn=torch.backends.cudnn.version(),
                l2_mib=getattr(p, "L2_cache_size", 0) / 2**20, **peak_bandwidth(p))
    peak = f"{figs['peak_gbps'] / 1000:.2f} TB/s" if figs["peak_gbps"] else "unknown"
    figs["summary"] = (f"{p.name}, {free / 2**30:.0f} of {total / 2**30:.0f} GiB free, torch {torch.__version__}, "
                       f"CUDA {torch.version.cuda}, triton {figs['triton']}, peak bandwidth {peak}")
    return figs


def kernel_tests(ctx: Ctx) -> dict[str, Any]:
    """``pytest tests/kernels``: compiled Triton kernels on the GPU; a small interpreted subset in a dry run."""
    env = repo_env()
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(REPO / "tests" / "kernels")]
    if ctx.dry:
        env["TRITON_INTERPRET"] = "1"
        cmd += ["-k", "edge_mix"]
    else:
        env.pop("TRITON_INTERPRET", None)  # compiled kernels, not the interpreter
    code, out = stream_cmd(cmd, env)
    lines = [ln for ln in out.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else f"pytest exited {code} with no output"
    figs: dict[str, Any] = {"compiled": not ctx.dry, "returncode": code, "summary": last.strip("= ")}
    for count, what in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)", last):
        figs[what.rstrip("s") if what.startswith("error") else what] = int(count)
    if code != 0:
        raise RowFailed(f"pytest tests/kernels: {last}\n{out.strip()[-2500:]}", figs)
    return figs


def edge_mix_bandwidth(ctx: Ctx, dtype: str) -> dict[str, Any]:
    """GB/s of the node-batched edge mix, Triton against the reference, forward and forward+backward.

    Bytes moved are the least any implementation must move: forward reads every input once and writes the
    output; backward reads the output's gradient and the inputs (for the weights' gradient) and writes every
    input's gradient, so forward+backward is 3 x inputs + 2 x output. The weights are in the data's dtype, so
    both backends write the same output dtype.
    """
    import torch

    from gasgnn import kernels

    dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    dev = ctx.device
    N, n, K, S, C, H, W = ctx.pick((8, 4, 6, 2, 32, 128, 256), (1, 2, 3, 1, 4, 8, 8))
    warmup, reps = ctx.pick((3, 20), (1, 2))
    if not kernels.triton_available():
        raise RuntimeError("Triton >= 3.2 is not importable: no Triton kernels to measure")
    gen = torch.Generator(device=dev).manual_seed(0)
    ys = [torch.randn(N, n * C, H, W, device=dev, dtype=dt, generator=gen) for _ in range(K)]
    shared = [torch.randn(N, C, H, W, device=dev, dtype=dt, generator=gen) for _ in range(S)]
    w = torch.softmax(torch.randn(n, K + S, device=dev, generator=gen), -1).to(dt)
    size = ys[0].element_size()
    ins, out = (K * N * n * C * H * W + S * N * C * H * W) * size, N * n * C * H * W * size
    figs: dict[str, Any] = {"dtype": dtype, "shape": {"N": N, "edges": n, "batched_ops": K, "shared_ops": S, "C": C,
                                                      "H": H, "W": W},
                            "bytes_fwd": ins + out, "bytes_fwdbwd": 3 * ins + 2 * out}
    if not ctx.dry:
        figs.update(peak_bandwidth(torch.cuda.get_device_properties(0)))
        big = torch.empty((ins + out) // 4, device=dev, dtype=torch.float32)
        dst = torch.empty_like(big)
        ms = statistics.median(time_calls(lambda: dst.copy_(big), dev, warmup, reps, events=True))
        figs["copy_gbps"] = 2 * big.nbytes / ms / 1e6
        del big, dst
    leaves = [t.clone().requires_grad_(True) for t in [*ys, *shared, w]]
    g = torch.randn(N, n * C, H, W, device=dev, dtype=dt, generator=gen)
    for backend in ("reference", "triton"):
        with kernels.use_backend(backend):
            fwd = statistics.median(time_calls(lambda: kernels.edge_mix(ys, shared, w), dev, warmup, reps, True))

            def fwdbwd() -> None:
                o = kernels.edge_mix(leaves[:K], leaves[K:-1], leaves[-1])
                torch.autograd.grad(o, leaves, g)

            both = statistics.median(time_calls(fwdbwd, dev, warmup, reps, True))
        figs[backend] = {"fwd_ms": fwd, "fwd_gbps": (ins + out) / fwd / 1e6, "fwdbwd_ms": both,
                         "fwdbwd_gbps": (3 * ins + 2 * out) / both / 1e6}
    t, r = figs["triton"], figs["reference"]
    peak = figs.get("peak_gbps")
    for p in ("fwd", "fwdbwd"):
        figs[f"triton_{p}_pct_of_peak"] = 100 * t[f"{p}_gbps"] / peak if peak else None
        figs[f"triton_{p}_speedup"] = r[f"{p}_ms"] / t[f"{p}_ms"]
    pct = f" ({figs['triton_fwd_pct_of_peak']:.0f} % of peak)" if peak else ""
    figs["summary"] = (f"{dtype}: Triton {t['fwd_gbps']:.0f} GB/s fwd{pct}, {t['fwdbwd_gbps']:.0f} fwd+bwd; "
                       f"reference {r['fwd_gbps']:.0f} / {r['fwdbwd_gbps']:.0f}")
    return figs


# ----------------------------------------------------------------------------------------------
# search step


def search_step(ctx: Ctx, variant: str, amp: bool, kernel: str | None = None, compiled: str | None = None,
                space: str = "full") -> dict[str, Any]:
    """One full search step (architecture + weights) at batch 8: median time, peak memory, kernels per step.

    ``variant``: ``naive`` (benchmarks/naive_darts.py), ``per_edge`` or ``batched``; ``kernel`` forces the
    edge-mix backend (``reference`` or ``triton``); ``compiled``: ``compile`` (``torch.compile`` of the
    supernet) or ``cudagraphs`` (the searcher's ``cuda_graphs``), timed beside the eager step of the same space.
    """
    import bench_search_step
    import torch

    from gasgnn import kernels

    if not ctx.dry:
        torch.backends.cudnn.benchmark = True
    size, batch = ctx.pick([360, 480], [32, 32]), ctx.pick(8, 2)
    space_kw = TINY if ctx.dry else (SMALL if space == "small" else None)
    warmup, reps = ctx.pick((3, 10), (0, 2))

    def make(graphs: bool, compile_it: bool) -> Callable[[], Any]:
        ns = argparse.Namespace(device=ctx.device, size=size, batch=batch, space=space_kw, amp=amp,
                                cuda_graphs=graphs, guide="gcn_sim")
        s, b = bench_search_step.make(variant, ns)
        if compile_it:
            s.run_net = torch.compile(s.net, dynamic=False)  # the dry run traces it with the eager backend
        return lambda: s.step(b, b, 1.0)

    figs: dict[str, Any] = {"variant": variant, "amp": amp and not ctx.dry, "kernel": kernel or "auto",
                            "compiled": compiled, "space": space_kw or "default", "batch": batch, "size": size}
    with kernels.use_backend(kernel):
        if compiled:  # the eager step of the same space, for the speed-up
            figs["eager_median_ms"] = statistics.median(time_calls(make(False, False), ctx.device, warmup, reps))
        # CUDA graphs are the searcher's own option; on the CPU (dry run) both compiled kinds trace with Dynamo
        graphs = compiled == "cudagraphs" and not ctx.dry
        step = make(graphs, compiled == "compile" or (compiled is not None and ctx.dry))
        t = time.perf_counter()
        step()
        sync(ctx.device)
        figs["first_step_s"] = time.perf_counter() - t  # compiling, autotuning, CUDA graph capture
        times = time_calls(step, ctx.device, warmup, reps)
        figs.update(median_ms=statistics.median(times), min_ms=min(times), max_ms=max(times))
        if ctx.device == "cuda":
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            step()
            sync(ctx.device)
            figs["peak_mib"] = (torch.cuda.max_memory_allocated() - base) / 2**20
            figs["allocated_mib"] = base / 2**20
        figs.update(count_launches(step, ctx.device))
    extra = f", {figs['eager_median_ms'] / figs['median_ms']:.2f}x eager" if compiled else ""
    k = figs["kernels_per_step"]
    figs["summary"] = (f"{figs['median_ms']:.1f} ms/step{extra}"
                       + (f", {figs['peak_mib']:.0f} MiB peak" if "peak_mib" in figs else "")
                       + (f", {k} kernels/step" if k is not None else f", {figs['aten_ops_per_step']} aten ops/step"))
    return figs


# ----------------------------------------------------------------------------------------------
# the list, in running order


def _rows() -> list[Row]:
    rows = [
        Row("preflight", "device", preflight, 5, 60),
        Row("kernels", "tests", kernel_tests, 40, 120),
        Row("kernels", "bandwidth_fp32", partial(edge_mix_bandwidth, dtype="fp32"), 10, 60),
        Row("kernels", "bandwidth_bf16", partial(edge_mix_bandwidth, dtype="bf16"), 10, 60),
    ]
    for amp in (False, True):
        p = "amp" if amp else "fp32"

        def same(name: str, amp: bool = amp) -> str | None:
            return f"search_step:{name}_fp32" if amp else None

        rows += [
            Row("search_step", f"naive_{p}", partial(search_step, variant="naive", amp=amp), 12, 90,
                dry_same_as=same("naive")),
            Row("search_step", f"batched_triton_{p}", partial(search_step, variant="batched", amp=amp,
                                                               kernel="triton"), 10, 90,
                dry_same_as=same("batched_triton")),
            Row("search_step", f"batched_reference_{p}", partial(search_step, variant="batched", amp=amp,
                                                                  kernel="reference"), 10, 90,
                dry_same_as=same("batched_reference")),
        ]
        if not amp:
            rows.append(Row("search_step", "per_edge_fp32", partial(search_step, variant="per_edge", amp=False),
                            12, 90))
    for (h, w), classes in (((1024, 2048), 19), ((720, 960), 11)):
        for dtype in ("fp16", "fp32"):
            rows.append(Row("fps", f"{h}x{w}_{dtype}_eager", partial(fps, size=(h, w), classes=classes, dtype=dtype,
                                                                     backend="eager"), 8, 60))
    rows += [
        Row("latency", "table_validate_720x960", latency_table, 30, 120),
        Row("search", "short_search", short_search, 45, 180),
        Row("search_step", "batched_compile_small_fp32", partial(search_step, variant="batched", amp=False,
                                                                 compiled="compile", space="small"), 40, 150),
        Row("search_step", "batched_cudagraphs_small_fp32", partial(search_step, variant="batched", amp=False,
                                                                    compiled="cudagraphs", space="small"), 40, 150,
            dry_same_as="search_step:batched_compile_small_fp32"),
        Row("fps", "1024x2048_fp16_compile", partial(fps, size=(1024, 2048), classes=19, dtype="fp16",
                                                     backend="compile"), 40, 150),
        Row("fps", "720x960_fp16_compile", partial(fps, size=(720, 960), classes=11, dtype="fp16",
                                                   backend="compile"), 40, 150),
        # the tail (TAIL): these get what the budget leaves, if anything
        Row("search_step", "per_edge_amp", partial(search_step, variant="per_edge", amp=True), 12, 90,
            dry_same_as="search_step:per_edge_fp32"),
        Row("search_step", "batched_cudagraphs_fp32", partial(search_step, variant="batched", amp=False,
                                                              compiled="cudagraphs"), 180, 400,
            dry_same_as="search_step:batched_compile_small_fp32"),
    ]
    return rows


ROWS: list[Row] = _rows()
#: The rows that run on what the default budget leaves: every other row's expected time fits it.
TAIL: tuple[str, ...] = ("search_step:per_edge_amp", "search_step:batched_cudagraphs_fp32")
SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(r.section for r in ROWS))
