"""What the GPU suite's rows share: the row record, the context, timing, kernel counting, subprocesses.

``benchmarks/gpu_rows.py`` and ``benchmarks/gpu_rows_nets.py`` define the rows; ``benchmarks/gpu_suite.py``
runs them. Only the standard library is imported at the top (torch inside the helpers), so the suite can
list and record rows where torch itself is broken.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
#: The dry run's space (CPU, seconds).
TINY: dict[str, Any] = {"num_cells": 3, "num_nodes": 2, "reduction_cells": [1], "channels": 4}
#: The compiled search-step rows' small space: compiling it takes a fraction of the 12-cell supernet's time.
SMALL: dict[str, Any] = {"num_cells": 4, "num_nodes": 3, "reduction_cells": [2]}
#: Peak memory bandwidth (TB/s, vendors' datasheets) of devices whose properties do not give it; the longest
#: name contained in the device name wins ("GH200" before "H200", "H100 PCIe" before "H100").
KNOWN_PEAK_TBS: dict[str, float] = {
    "H200": 4.8, "GH200": 4.0, "H100 NVL": 3.9, "H100 PCIe": 2.0, "H100": 3.35, "A100-SXM4-80GB": 2.039,
    "A100 80GB PCIe": 1.935, "A100": 1.555, "L40S": 0.864, "L40": 0.864, "L4": 0.3, "A10G": 0.6, "A10": 0.6,
    "V100": 0.9, "T4": 0.32, "RTX 4090": 1.008, "RTX 3090": 0.936,
}
#: Environment variable naming rows to break on purpose (tests): ``ROW_ID=error|crash|hang`` comma-separated.
FAULT_ENV = "GASGNN_GPU_SUITE_FAULT"


class RowSkipped(Exception):
    """The row cannot run here; the message says why (recorded as ``skipped``)."""


class RowFailed(Exception):
    """The row ran and failed; ``figures`` keeps what it measured (recorded as ``failed``)."""

    def __init__(self, message: str, figures: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.figures = figures or {}


@dataclass
class Ctx:
    """What every row may read: dry run or GPU, where to put scratch files, the data and networks to use."""

    dry: bool
    work: Path
    camvid: str | None = None
    genotype: str | None = None
    reference: str = "hand_light"
    threads: int | None = None

    @property
    def device(self) -> str:
        return "cpu" if self.dry else "cuda"

    def pick(self, gpu: Any, dry: Any) -> Any:
        """``dry`` in a dry run, else ``gpu``."""
        return dry if self.dry else gpu


@dataclass(frozen=True)
class Row:
    """One measurement: ``section:name``, its function, expected and longest seconds on the GPU."""

    section: str
    name: str
    fn: Callable[[Ctx], dict[str, Any]]
    expected_s: float
    cap_s: float
    dry_cap_s: float = 90.0
    #: The row whose CPU path this one repeats exactly (an AMP row: autocast is off on the CPU; a CUDA-graph
    #: row: Dynamo's eager backend either way): the dry run records it as skipped instead of running it twice.
    dry_same_as: str | None = None

    @property
    def id(self) -> str:
        return f"{self.section}:{self.name}"

    @property
    def min_s(self) -> float:
        """The least time worth starting the row with (half its expected time, at least 3 s)."""
        return max(3.0, 0.5 * self.expected_s)


# ----------------------------------------------------------------------------------------------
# helpers


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_calls(fn: Callable[[], Any], device: str, warmup: int, reps: int, events: bool = False) -> list[float]:
    """Milliseconds of each of ``reps`` calls after ``warmup``: CUDA events around the call with ``events``
    (device time of a kernel), else synchronised wall time (what a launch-bound step costs)."""
    import torch

    for _ in range(warmup):
        fn()
    sync(device)
    out = []
    for _ in range(reps):
        if events and device.startswith("cuda"):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            out.append(a.elapsed_time(b))
        else:
            t = time.perf_counter()
            fn()
            sync(device)
            out.append(1e3 * (time.perf_counter() - t))
    return out


def peak_bandwidth(props: Any = None, name: str = "") -> dict[str, Any]:
    """The device's peak memory bandwidth (GB/s) and where the number comes from: its properties (2 x memory
    clock x bus width) when torch exposes them, else :data:`KNOWN_PEAK_TBS`, else NVML's clock and bus width."""
    clock, bus = getattr(props, "memory_clock_rate", None), getattr(props, "memory_bus_width", None)  # kHz, bits
    if clock and bus:
        return {"peak_gbps": 2 * clock * 1e3 * bus / 8 / 1e9, "peak_source": "device properties"}
    name = name or getattr(props, "name", "")
    for key in sorted(KNOWN_PEAK_TBS, key=len, reverse=True):
        if key in name:
            return {"peak_gbps": 1000 * KNOWN_PEAK_TBS[key], "peak_source": f"datasheet ({key})"}
    try:
        import pynvml

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        mhz = pynvml.nvmlDeviceGetMaxClockInfo(h, pynvml.NVML_CLOCK_MEM)
        bits = pynvml.nvmlDeviceGetMemoryBusWidth(h)
        return {"peak_gbps": 2 * mhz * 1e6 * bits / 8 / 1e9, "peak_source": "NVML clock and bus width"}
    except Exception:  # no NVML, or a call it lacks: the number is unknown, not an error
        return {"peak_gbps": None, "peak_source": f"unknown device {name!r}"}


def count_launches(fn: Callable[[], Any], device: str) -> dict[str, Any]:
    """Kernels of one call of ``fn`` under :mod:`torch.profiler`: device-side kernel events and the CPU's
    launch calls (CUDA runtime or driver launches, graph launches); aten ops on the CPU."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    cuda = device.startswith("cuda")
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=acts) as prof:
        fn()
        sync(device)
    try:  # the raw events: building the Python event tree takes ~20 s for the 12-cell supernet's ~300k events
        raw = prof.profiler.kineto_results.events()
        events = [(e.name(), e.device_type()) for e in raw]
    except AttributeError:
        events = [(e.name, e.device_type) for e in prof.events()]
    kernels = sum(1 for _, d in events if d == DeviceType.CUDA)
    launches = sum(1 for n, d in events if d == DeviceType.CPU
                   and ("LaunchKernel" in n or "GraphLaunch" in n or n.startswith("cuLaunch")))
    return {"kernels_per_step": kernels if cuda else None, "launch_calls_per_step": launches if cuda else None,
            "aten_ops_per_step": sum(1 for n, _ in events if n.startswith("aten::"))}


def die_with_parent() -> None:
    """Asks Linux to SIGKILL this process when its parent dies (``prctl(PR_SET_PDEATHSIG)``), so a suite killed
    at the device's time limit leaves no row running; a no-op elsewhere. Used as ``preexec_fn`` too."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except OSError:
            pass


def stream_cmd(cmd: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """Runs ``cmd`` in the repository, copying its output line by line to the row's log as it comes (a row
    killed at its timeout still shows how far the command got); returns its exit code and output."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", preexec_fn=die_with_parent)
    out = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        out.append(line)
    return proc.wait(), "".join(out)


def run_cmd(cmd: list[str], env: dict[str, str] | None = None) -> str:
    """:func:`stream_cmd` that raises :class:`RuntimeError` with the output's tail on a non-zero exit."""
    code, out = stream_cmd(cmd, env)
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd[2:5])} ... exited {code}: {out.strip()[-1500:]}")
    return out


def repo_env() -> dict[str, str]:
    """This environment with the repository first on ``PYTHONPATH`` (for ``python -m gasgnn`` and pytest)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


