"""Small shared helpers: atomic writes, JSON I/O, seeding, device sync, parameter counts.

This module imports only :mod:`gasgnn.errors` from gasgnn: every layer may use it.
"""

from __future__ import annotations

import errno
import hashlib
import importlib
import json
import math
import os
import random
import shutil
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from gasgnn.errors import WriteError


def _publish(tmp: str, path: Path) -> None:
    # mkstemp creates 0600 files; give the result the permissions a plain open() would.
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    os.replace(tmp, path)


def _write_failed(e: BaseException, path: Path) -> WriteError:
    """A :class:`WriteError` naming ``path`` and why (a full disk is the usual reason)."""
    code = getattr(e, "errno", None)
    if code == errno.ENOSPC:
        why = "no space left on the device"
    elif code == errno.EFBIG:
        why = "the file-size limit was reached"
    else:
        try:
            free = shutil.disk_usage(path.parent).free
        except OSError:
            free = None
        if free is not None and free < 2**26:
            why = "the device is full"
        elif isinstance(e, RuntimeError):  # torch.save's writer: "[enforce fail at inline_container.cc] unexpected pos"
            why = "the write stopped part-way (a full device or a file-size limit?)"
        else:
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return WriteError(f"cannot write {path}: {why}; the previous {path.name}, if any, is kept")


def _is_io_failure(e: BaseException) -> bool:
    if isinstance(e, OSError):
        return True
    # torch.save's C++ writer raises RuntimeError on a failed write (not on a pickling error)
    msg = str(e)
    return isinstance(e, RuntimeError) and any(s in msg for s in ("inline_container", "unexpected pos",
                                                                    "PytorchStreamWriter", "file write failed"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename).

    A run killed mid-write leaves either the old file or the new one, never a torn one.

    Args:
        path (str or PathLike): Destination; parent folders are created.
        data (bytes): Content.

    Returns:
        Path: The destination.

    Raises:
        WriteError: naming ``path`` when it cannot be written (e.g. a full disk); the old file is kept.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, (FileNotFoundError, PermissionError, NotADirectoryError)):
            raise _write_failed(e, path) from None
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes ``text`` (UTF-8) to ``path`` atomically; see :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Writes ``obj`` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Reads JSON, with errors that name the file.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if it is not valid JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{what} {path} is not valid JSON: {e}") from None


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` atomically (used for checkpoints).

    Raises:
        WriteError: naming ``path`` when it cannot be written (e.g. a full disk); the old file is kept.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        _publish(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if _is_io_failure(e) and not isinstance(e, (FileNotFoundError, PermissionError, NotADirectoryError)):
            raise _write_failed(e, path) from None
        raise
    return path


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seeds torch, NumPy and :mod:`random`; optionally turns on deterministic algorithms.

    Args:
        seed (int): The seed.
        deterministic (bool, optional): ``torch.use_deterministic_algorithms`` (warn-only) and
            deterministic cuDNN. (default: :obj:`False`)
    """
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def rng_state() -> dict[str, Any]:
    """All RNG states (Python, NumPy, torch, CUDA), for checkpoints."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restores :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def json_safe(obj: Any) -> Any:
    """Replaces NaN and infinite floats by :obj:`None` (recursively) so the output is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def device_sync(device: str | torch.device) -> None:
    """Waits for the device's queued work (a no-op on the CPU), so a timer measures kernels, not launches."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_params(model: torch.nn.Module) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------------------
# CPU thread policy on shared machines.

def busy_cores(interval: float = 0.3) -> float:
    """Cores other processes keep busy now: per-core load from ``psutil`` over ``interval`` seconds
    when it is installed, else the 1-minute load average (which lags behind)."""
    try:
        import psutil
    except ImportError:
        try:
            return float(os.getloadavg()[0])
        except (OSError, AttributeError):
            return 0.0
    per_core = psutil.cpu_percent(interval=interval, percpu=True)
    return float(sum(per_core) / 100.0)


def resolve_threads(spec: str | int | None, cores: int | None = None, busy: float | None = None) -> int | None:
    """The number of intra-op CPU threads for ``--threads``.

    Args:
        spec (str or int, optional): ``'auto'`` (the cores other processes leave free, at least 1), a
            positive number, or :obj:`None` (leave torch's choice).
        cores (int, optional): Cores of the machine (default: :func:`os.cpu_count`).
        busy (float, optional): Busy cores (default: :func:`busy_cores`).

    Returns:
        int or None: The thread count, or :obj:`None` to leave torch alone.

    Raises:
        ValueError: naming ``--threads`` for anything else.
    """
    if spec is None or spec == "":
        return None
    if isinstance(spec, str) and spec.lower() == "auto":
        cores = cores or os.cpu_count() or 1
        busy = busy_cores() if busy is None else busy
        # Why: OpenMP threads spin-wait for each other; one thread on a core another process holds stalls
        # every parallel region (a 3x slower step on a 2-core machine). Use only the free cores.
        return max(1, min(cores, int(cores - busy + 0.5)))
    try:
        n = int(spec)
    except (TypeError, ValueError):
        raise ValueError(f"--threads (or $GASGNN_THREADS): expected 'auto' or a number >= 1, got {spec!r}") from None
    if n < 1:
        raise ValueError(f"--threads (or $GASGNN_THREADS): must be >= 1, got {n}")
    cores = cores or os.cpu_count() or 1
    if n > cores:
        # Why: OpenMP threads beyond the cores wait for each other at every parallel region (minutes per step).
        raise ValueError(f"--threads {n} (or $GASGNN_THREADS): this machine has {cores} cores, and more threads than "
                         f"cores make every step slower; use 'auto' or 1..{cores}")
    return n


def nonfinite_state(module: torch.nn.Module | None = None, limit: int = 5, **modules: torch.nn.Module) -> list[str]:
    """Names of parameters and floating buffers (e.g. BatchNorm running statistics) that hold NaN or
    infinite values (at most ``limit``).

    The search runs this every step, so the common case (everything finite) costs a constant number of
    kernel launches whatever the number of tensors: one multi-tensor max-abs per (device, dtype) group
    (``torch._foreach_norm`` with ``ord=inf``, in which NaN propagates), one stack, one host read. Only
    when something is off are the tensors scanned one by one for their names.

    Args:
        module (nn.Module, optional): A module; its names are reported as they are.
        limit (int, optional): Names to report at most. (default: :obj:`5`)
        **modules (nn.Module): More modules, reported as ``key.name``.

    Returns:
        list of str: the offending names, empty when all are finite.
    """
    named: list[tuple[str, torch.Tensor]] = []
    for prefix, m in ([("", module)] if module is not None else []) + list(modules.items()):
        pre = f"{prefix}." if prefix else ""
        named += [(pre + n, t) for n, t in (*m.named_parameters(), *m.named_buffers())
                  if t.is_floating_point() and t.numel() > 0]
    if not named:
        return []
    with torch.no_grad():
        groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
        for _, t in named:
            groups.setdefault((t.device, t.dtype), []).append(t)
        dev = named[0][1].device
        peaks = [torch.stack(torch._foreach_norm(ts, float("inf"))).amax().float().to(dev) for ts in groups.values()]
        if bool(torch.isfinite(torch.stack(peaks)).all()):
            return []
        return [n for n, t in named if not bool(torch.isfinite(t).all())][:limit]


def content_sha1(obj: Any) -> str:
    """A hash of a JSON-able object's content (keys sorted, so dict order does not matter)."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


class MissingExtraError(ImportError, ValueError):
    """An optional dependency is not installed. A :class:`ValueError` too, so the command line prints its one
    line (naming the extra to install) instead of a traceback."""


def import_extra(module: str, extra: str, what: str) -> ModuleType:
    """Imports an optional dependency, or raises :class:`MissingExtraError` naming the extra that installs it.

    Args:
        module (str): The module (``'safetensors.torch'``).
        extra (str): The gasgnn extra that installs it (``'hub'``).
        what (str): What needs it, the start of the message (``'pretrained weights'``).

    Returns:
        ModuleType: The module.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise MissingExtraError(f"{what}: {top} is not installed (pip install 'gasgnn[{extra}]')") from None
