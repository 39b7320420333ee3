"""Latency, FPS, FLOPs and memory benchmarks of derived networks (batch 1, inference).

Networks compared with each other (e.g. the ASPP and PPM heads of one genotype) are timed
*interleaved* in one process: every round runs a chunk of iterations of each network in turn, with the
order rotated between rounds, so slow drifts of the machine (other jobs, clocks, thermal state) hit all
of them alike. Latency is the median over all timed iterations, with the 10th/90th percentiles and the
inter-quartile range as its spread; CUDA work is synchronised around every timed call.

Backends are the latency backends (:data:`gasgnn.latency.LATENCY_BACKENDS`: ``torch`` (eager),
``torch-compile``, ``onnxruntime`` and any registered by the user), so a network is benchmarked on exactly
the runtime its latency table was measured on; ``eager`` and ``compile`` are accepted for ``torch`` and
``torch-compile``. A backend or dtype the machine cannot run is skipped with a reason (fp16 needs CUDA;
ONNX Runtime runs fp32 only).

Example::

    from gasgnn.train.bench import benchmark

    report = benchmark({"aspp": net_a, "ppm": net_p}, sizes=[(360, 480)], backends=("torch", "onnxruntime"))
    for r in report["results"]:
        print(r["model"], r["latency_ms"]["median"], r["fps"])
"""

from __future__ import annotations

import copy
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from gasgnn.latency import LATENCY_BACKENDS, BackendUnavailable, make_backend
from gasgnn.utils import count_params, device_sync

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
#: The built-in backends (:data:`gasgnn.latency.LATENCY_BACKENDS` may hold more).
BACKENDS = ("torch", "torch-compile", "onnxruntime")
#: Earlier names of bench's backends, still accepted.
ALIASES = {"eager": "torch", "compile": "torch-compile"}


def backend_name(backend: str) -> str:
    """The latency backend ``backend`` names (an :data:`ALIASES` name resolved).

    Raises:
        ValueError: for an unknown name, listing the registered ones.
    """
    name = ALIASES.get(backend, backend)
    if name not in LATENCY_BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; registered: {', '.join(LATENCY_BACKENDS.names())} "
                         f"(and {', '.join(ALIASES)})")
    return name


@torch.no_grad()
def count_flops(model: nn.Module, size: Sequence[int], in_channels: int = 3) -> int:
    """FLOPs of one batch-1 forward pass in eval mode (:class:`~torch.utils.flop_counter.FlopCounterMode`,
    which counts a multiply-add as 2 FLOPs and covers convolutions, matmuls and the like).

    Args:
        model (nn.Module): The network.
        size ((int, int)): Input ``(H, W)``.
        in_channels (int, optional): Image channels. (default: :obj:`3`)

    Returns:
        int: FLOPs.
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    p = next(model.parameters())
    x = torch.zeros(1, in_channels, int(size[0]), int(size[1]), device=p.device, dtype=p.dtype)
    with FlopCounterMode(display=False) as fc:
        model(x)
    model.train(was_training)
    return int(fc.get_total_flops())


def latency_stats(times_ms: Sequence[float]) -> dict[str, float]:
    """Median, mean, min, 10th/25th/75th/90th percentiles and IQR of latencies in ms."""
    a = np.asarray(times_ms, dtype=np.float64)
    p10, q1, q3, p90 = np.percentile(a, [10, 25, 75, 90])
    return {
        "median": float(np.median(a)), "mean": float(a.mean()), "min": float(a.min()), "p10": float(p10),
        "q1": float(q1), "q3": float(q3), "p90": float(p90), "iqr": float(q3 - q1), "n": int(a.size),
    }


def make_runner(
    model: nn.Module,
    size: Sequence[int],
    backend: str = "torch",
    dtype: str = "fp32",
    channels_last: bool = False,
    device: str | torch.device = "cpu",
    in_channels: int = 3,
) -> Callable[[], Any]:
    """Prepares a zero-argument callable running one batch-1 inference of ``model``.

    Args:
        model (nn.Module): The network (copied, not modified).
        size ((int, int)): Input ``(H, W)``.
        backend (str, optional): A latency backend (``'torch'``, ``'torch-compile'``, ``'onnxruntime'``, or a
            registered one; ``'eager'`` and ``'compile'`` are aliases). (default: ``"torch"``)
        dtype (str, optional): ``'fp32'``, ``'fp16'`` (CUDA only) or ``'bf16'``. (default: ``"fp32"``)
        channels_last (bool, optional): NHWC memory format (PyTorch backends). (default: :obj:`False`)
        device (str or torch.device, optional): Device. (default: ``"cpu"``)
        in_channels (int, optional): Image channels. (default: :obj:`3`)

    Returns:
        callable: Runs one inference (results are discarded).

    Raises:
        BackendUnavailable: if this backend/dtype/device combination cannot run.
    """
    device = torch.device(device)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    name = backend_name(backend)
    if dtype == "fp16" and device.type != "cuda":
        raise BackendUnavailable("fp16 inference needs a CUDA device (use bf16 on the CPU)")
    H, W = int(size[0]), int(size[1])
    # The session or compiled graph gets torch's thread count, so the backends compete on equal terms.
    runtime = make_backend(name, device, DTYPES[dtype], torch.get_num_threads())
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = copy.deepcopy(model).eval().to(device=device, dtype=DTYPES[dtype], memory_format=fmt)
    x = torch.randn(1, in_channels, H, W, device=device, dtype=DTYPES[dtype]).contiguous(memory_format=fmt)
    with torch.no_grad():
        call = runtime.prepare(net, (x,))

    def run() -> Tensor:
        with torch.inference_mode():
            return call()

    return run


def peak_memory_mb(fn: Callable[[], Any], device: torch.device) -> float | None:
    """Peak CUDA memory allocated during one call above what was allocated before (MiB); :obj:`None`
    on the CPU, where no per-call allocator statistic exists."""
    if device.type != "cuda":
        return None
    device_sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    device_sync(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def benchmark(
    models: Mapping[str, nn.Module],
    sizes: Sequence[Sequence[int]] = ((360, 480),),
    backends: Sequence[str] = ("torch",),
    dtype: str = "fp32",
    channels_last: bool = False,
    device: str | torch.device = "cpu",
    warmup: int = 10,
    iters: int = 50,
    rounds: int = 5,
    baseline: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Benchmarks several networks interleaved, at several sizes and on several backends.

    Args:
        models (Mapping[str, nn.Module]): Networks by label (e.g. ``{"aspp": ..., "ppm": ...}``).
        sizes (sequence of (int, int), optional): Input sizes. (default: ``((360, 480),)``)
        backends (sequence of str, optional): Latency backends (:func:`backend_name`); unavailable ones are
            listed under ``"skipped"``. (default: ``("torch",)``)
        dtype (str, optional): ``'fp32'``, ``'fp16'`` or ``'bf16'``. (default: ``"fp32"``)
        channels_last (bool, optional): NHWC. (default: :obj:`False`)
        device (str or torch.device, optional): Device. (default: ``"cpu"``)
        warmup (int, optional): Untimed calls per network before timing. (default: :obj:`10`)
        iters (int, optional): Timed calls per network, spread over ``rounds``. (default: :obj:`50`)
        rounds (int, optional): Interleaving rounds. (default: :obj:`5`)
        baseline (str, optional): Label the others are compared with. (default: the first)
        progress (bool, optional): Progress bar. (default: :obj:`True`)

    Returns:
        dict: ``environment``, ``results`` (one per network x size x backend: ``model``, ``size``,
        ``backend``, ``dtype``, ``channels_last``, ``params``, ``flops``, ``gflops``, ``latency_ms``
        (:func:`latency_stats`), ``fps`` (1000 / median), ``peak_memory_mb``, ``memory_note``),
        ``comparisons`` (``speedup`` = baseline median / other median, per size and backend) and
        ``skipped`` (``backend``, ``size``, ``reason``).
    """
    device = torch.device(device)
    if not models:
        raise ValueError("benchmark: no models")
    names = list(models)
    baseline = baseline or names[0]
    if iters < 1 or rounds < 1:
        raise ValueError("benchmark: iters and rounds must be >= 1")
    per_round = max(1, iters // rounds)
    backends = list(dict.fromkeys(backend_name(b) for b in backends))
    flops = {(n, tuple(s)): count_flops(m.to(device).float(), s) for n, m in models.items() for s in sizes}
    results: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    comparisons: list[dict[str, Any]] = []
    total = len(sizes) * len(backends) * rounds * len(names)
    bar = tqdm(total=total, desc="bench", leave=False, disable=not progress)
    for size in sizes:
        for backend in backends:
            try:
                runners = {n: make_runner(m, size, backend, dtype, channels_last, device)
                           for n, m in models.items()}
            except BackendUnavailable as e:
                skipped.append({"backend": backend, "size": list(size), "reason": str(e)})
                bar.update(rounds * len(names))
                continue
            for fn in runners.values():
                for _ in range(warmup):
                    fn()
                device_sync(device)
            memory = {n: peak_memory_mb(fn, device) for n, fn in runners.items()}
            times: dict[str, list[float]] = {n: [] for n in names}
            for r in range(rounds):
                order = names[r % len(names):] + names[: r % len(names)]  # rotate to cancel position effects
                for n in order:
                    fn = runners[n]
                    for _ in range(per_round):
                        device_sync(device)
                        t0 = time.perf_counter()
                        fn()
                        device_sync(device)
                        times[n].append(1000 * (time.perf_counter() - t0))
                    bar.update(1)
            for n in names:
                st = latency_stats(times[n])
                f = flops[(n, tuple(size))]
                results.append({
                    "model": n, "size": [int(size[0]), int(size[1])], "backend": backend, "dtype": dtype,
                    "channels_last": channels_last and backend != "onnxruntime", "batch": 1,
                    "params": count_params(models[n]), "flops": f, "gflops": f / 1e9,
                    "latency_ms": st, "fps": 1000.0 / st["median"], "peak_memory_mb": memory[n],
                    "memory_note": "CUDA max_memory_allocated above baseline" if memory[n] is not None
                    else "n/a on the CPU",
                })
            if baseline in times:
                base = statistics.median(times[baseline])
                for n in names:
                    if n != baseline:
                        med = statistics.median(times[n])
                        comparisons.append({
                            "size": [int(size[0]), int(size[1])], "backend": backend, "baseline": baseline,
                            "model": n, "speedup": base / med,
                            "latency_change_pct": 100.0 * (med - base) / base,
                        })
    bar.close()
    return {"environment": environment(device), "results": results, "comparisons": comparisons,
            "skipped": skipped, "settings": {"warmup": warmup, "iters": per_round * rounds, "rounds": rounds}}


def environment(device: str | torch.device = "cpu") -> dict[str, Any]:
    """Where the numbers come from: device name, torch version, threads, platform."""
    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or "cpu")
    return {"device": str(device), "device_name": name, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "platform": platform.platform()}
