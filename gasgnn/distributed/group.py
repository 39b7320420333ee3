"""torch.distributed plumbing for multi-process search and training (``torchrun ... -m gasgnn``).

Everything here is a no-op in a single process (``WORLD_SIZE`` unset or 1, or no process group):
:func:`world_size` is 1, :func:`is_main` is :obj:`True`, reductions return their input and
:func:`check_identical` checks nothing, so the single-process code paths stay exactly what they were.

.. code-block:: python

    from gasgnn import distributed as dist

    with dist.session(backend="auto"):    # reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, ...
        device = dist.resolve_device("cuda")  # cuda:LOCAL_RANK under torchrun
        ...
        dist.all_reduce_grads(params)       # average the gradients over the ranks
        dist.check_identical({"alpha": alpha}, "architecture parameters")

See ``docs/distributed.md`` for what the search and the trainer reduce, and why.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as tdist
from torch import Tensor, nn
from torch.utils.data import Dataset, DistributedSampler, Sampler

__all__ = [
    "ArchitectureDriftError", "ShardSampler", "all_reduce_grads", "backend_name",
    "barrier", "broadcast_module", "broadcast_object", "check_identical", "check_same", "cleanup",
    "default_backend", "init_distributed", "is_distributed", "is_main", "launched", "local_rank", "rank",
    "reduce_scalar", "resolve_device", "seed_rank", "session", "shard_sampler", "train_sampler", "world_size",
]


class ArchitectureDriftError(RuntimeError):
    """Parameters that every rank must hold identically differ between ranks."""


# --- who am I ----------------------------------------------------------------------------------
def launched() -> bool:
    """Whether this process was started by a multi-process launcher (``WORLD_SIZE`` > 1 in the
    environment, as ``torchrun`` and ``srun`` set it)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_distributed() -> bool:
    """Whether a process group with more than one process is initialised."""
    return tdist.is_available() and tdist.is_initialized() and tdist.get_world_size() > 1


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return tdist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's global rank (0 without a process group)."""
    return tdist.get_rank() if is_distributed() else 0


_current_rank = rank  # for signatures whose argument is called ``rank``


def local_rank() -> int:
    """This process's rank on its node (``LOCAL_RANK``; 0 when unset)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Whether this is rank 0, the only rank that writes files and prints progress."""
    return rank() == 0


def backend_name() -> str | None:
    """The backend of the process group (``'nccl'``, ``'gloo'``), :obj:`None` without one."""
    return str(tdist.get_backend()) if is_distributed() else None


def default_backend() -> str:
    """``'nccl'`` when CUDA is available, else ``'gloo'``."""
    return "nccl" if torch.cuda.is_available() and tdist.is_nccl_available() else "gloo"


# --- set-up and tear-down ------------------------------------------------------------------------
def init_distributed(backend: str = "auto", timeout_minutes: float = 30.0) -> bool:
    """Initialises the default process group from the ``torchrun`` environment (``env://``).

    Does nothing when not launched (``WORLD_SIZE`` unset or 1) or when a group already exists.

    Args:
        backend (str, optional): ``'auto'`` (NCCL on CUDA, else gloo), ``'nccl'`` or ``'gloo'``.
            (default: :obj:`"auto"`)
        timeout_minutes (float, optional): Collective timeout; rank 0 may measure a latency table
            while the others wait. (default: :obj:`30.0`)

    Returns:
        bool: Whether this call created a process group.
    """
    if not launched() or (tdist.is_available() and tdist.is_initialized()):
        return False
    if not tdist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    backend = default_backend() if backend == "auto" else backend
    if backend not in ("nccl", "gloo"):
        raise ValueError(f"distributed backend: 'auto', 'nccl' or 'gloo', got {backend!r}")
    device = None
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise ValueError("distributed backend 'nccl' needs CUDA; use --dist-backend gloo on the CPU")
        device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
    # device_id binds the group to this rank's GPU: NCCL connects eagerly instead of guessing the device at
    # the first collective (and warning that it may hang if the guess is wrong).
    tdist.init_process_group(backend, init_method="env://", timeout=timedelta(minutes=timeout_minutes),
                             device_id=device)
    return True


def cleanup() -> None:
    """Destroys the default process group when there is one."""
    if tdist.is_available() and tdist.is_initialized():
        tdist.destroy_process_group()


@contextmanager
def session(backend: str = "auto", timeout_minutes: float = 30.0) -> Iterator[bool]:
    """Context that initialises the process group when launched distributed and destroys it on exit.

    Args:
        backend (str, optional): See :func:`init_distributed`. (default: :obj:`"auto"`)
        timeout_minutes (float, optional): See :func:`init_distributed`. (default: :obj:`30.0`)

    Returns:
        bool: (as the context value) whether this run is distributed.
    """
    created = init_distributed(backend, timeout_minutes)
    try:
        yield is_distributed()
    finally:
        if created:
            cleanup()


def resolve_device(device: str | torch.device) -> torch.device:
    """The device of this rank: ``'auto'`` picks CUDA when available, and a bare ``'cuda'`` becomes
    ``cuda:LOCAL_RANK`` when distributed (one GPU per process)."""
    device = str(device)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and is_distributed():
        device = f"cuda:{local_rank()}"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is not None and is_distributed():
        torch.cuda.set_device(dev)
    return dev


# --- collectives (no-ops in one process) ------------------------------------------------------------
def barrier() -> None:
    """Waits for every rank."""
    if is_distributed():
        tdist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (pickled; for small objects such as a latency table)."""
    if not is_distributed():
        return obj
    box = [obj]
    tdist.broadcast_object_list(box, src=src)
    return box[0]


def _flat_apply(tensors: Sequence[Tensor], fn: Any) -> None:
    # One collective per (device, dtype) over a flat copy: far fewer calls than one per tensor.
    groups: dict[tuple, list[Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype), []).append(t)
    for ts in groups.values():
        flat = torch.cat([t.detach().reshape(-1) for t in ts])
        fn(flat)
        offset = 0
        for t in ts:
            n = t.numel()
            t.detach().copy_(flat[offset:offset + n].view_as(t))
            offset += n


def broadcast_module(module: nn.Module, src: int = 0, buffers_only: bool = False) -> None:
    """Copies rank ``src``'s parameters and buffers (or only its buffers, e.g. batch-norm statistics)
    into ``module`` on every rank, in place."""
    if not is_distributed():
        return
    params = [] if buffers_only else list(module.parameters())
    tensors = [t for t in params + list(module.buffers()) if t.numel()]
    _flat_apply(tensors, lambda flat: tdist.broadcast(flat, src=src))


def all_reduce_grads(params: Iterable[Tensor], average: bool = True) -> None:
    """Sums (or averages) the gradients of ``params`` over the ranks, in place.

    Parameters without a gradient are skipped; every rank runs the same graph, so they have none
    on any rank (a rank that differs shows up in :func:`check_identical`).

    Args:
        params (iterable of Tensor): Parameters whose ``.grad`` to reduce.
        average (bool, optional): Divide by the world size (the gradient of the mean of the ranks'
            losses, as DDP does). (default: :obj:`True`)
    """
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    n = world_size()

    def reduce(flat: Tensor) -> None:
        tdist.all_reduce(flat)
        if average:
            flat.div_(n)

    _flat_apply(grads, reduce)


def reduce_scalar(value: float | Tensor, op: str = "mean") -> float:
    """A number reduced over the ranks (``'sum'``, ``'mean'``, ``'max'`` or ``'min'``); a NaN on any
    rank makes the sum and mean NaN everywhere, so every rank sees a divergence together."""
    v = float(value.detach()) if isinstance(value, Tensor) else float(value)
    if not is_distributed():
        return v
    t = torch.tensor([v], dtype=torch.float64, device=_comm_device())
    red = {"sum": tdist.ReduceOp.SUM, "mean": tdist.ReduceOp.SUM, "max": tdist.ReduceOp.MAX,
           "min": tdist.ReduceOp.MIN}[op]
    tdist.all_reduce(t, op=red)
    out = float(t.item())
    return out / world_size() if op == "mean" else out


def _comm_device() -> torch.device:
    if tdist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def check_same(value: float, what: str) -> None:
    """Raises :class:`ArchitectureDriftError` unless every rank passes the same number (e.g. the epoch a
    checkpoint was resumed at)."""
    if not is_distributed():
        return
    lo, hi = reduce_scalar(value, "min"), reduce_scalar(value, "max")
    if lo != hi:
        raise ArchitectureDriftError(f"{what} differs across ranks (from {lo:g} to {hi:g}); every rank must see "
                                     f"the same files (a shared file system) and the same settings")


def check_identical(
    tensors: Mapping[str, Tensor] | Iterable[tuple[str, Tensor]], what: str = "parameters", atol: float = 0.0
) -> None:
    """Checks that every rank holds the same values as rank 0; raises on every rank if not.

    Rank 0's tensors are broadcast (as one flat float64 vector) and each rank's largest difference
    per tensor is max-reduced, so all ranks agree on the verdict and raise together.

    Args:
        tensors (dict or iterable of (str, Tensor)): Named tensors (e.g. ``named_parameters()``).
        what (str, optional): What they are, for the message. (default: :obj:`"parameters"`)
        atol (float, optional): Largest tolerated absolute difference. (default: :obj:`0.0`, bitwise)

    Raises:
        ArchitectureDriftError: naming the tensor with the largest difference and its size.
    """
    if not is_distributed():
        return
    items = list(tensors.items()) if isinstance(tensors, Mapping) else list(tensors)
    items = [(n, t) for n, t in items if t.numel()]
    if not items:
        return
    dev = _comm_device()
    local = torch.cat([t.detach().reshape(-1).to(dev, torch.float64) for _, t in items])
    ref = local.clone()
    tdist.broadcast(ref, src=0)
    diff = (local - ref).abs()
    same_nan = local.isnan() & ref.isnan()
    diff = torch.where(same_nan, torch.zeros_like(diff), diff.nan_to_num(nan=math.inf))
    sizes = [t.numel() for _, t in items]
    per = torch.stack([d.max() for d in diff.split(sizes)])
    tdist.all_reduce(per, op=tdist.ReduceOp.MAX)
    bad = [(float(d), n) for d, (n, _) in zip(per.tolist(), items) if d > atol]
    if bad:
        bad.sort(reverse=True)
        worst = ", ".join(f"{n} (max |difference| {d:.3g})" for d, n in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise ArchitectureDriftError(
            f"{what} drifted between ranks: {worst}{more} differ from rank 0's. Every rank must apply the "
            f"same averaged gradients; look for a rank-dependent code path, nondeterministic kernels or a "
            f"rank that loaded another checkpoint."
        )


# --- data ---------------------------------------------------------------------------------------------
class ShardSampler(Sampler[int]):
    """Rank ``r`` of ``n`` gets indices ``r, r + n, r + 2n, ...`` in order, without padding.

    For evaluation: the shards are disjoint and cover the dataset exactly, so summing the ranks'
    confusion matrices gives the single-process result (:class:`DistributedSampler` pads with repeats).

    Args:
        dataset (Dataset): The dataset (only its length is used).
        num_replicas (int, optional): Ranks. (default: the world size)
        rank (int, optional): This rank. (default: the current rank)
    """

    def __init__(self, dataset: Dataset, num_replicas: int | None = None, rank: int | None = None) -> None:
        self.n = len(dataset)  # type: ignore[arg-type]
        self.num_replicas = world_size() if num_replicas is None else num_replicas
        self.rank = _current_rank() if rank is None else rank

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.n, self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.num_replicas))


def train_sampler(dataset: Dataset, seed: int, epoch: int, shuffle: bool = True,
                  drop_last: bool = True) -> DistributedSampler | None:
    """A :class:`DistributedSampler` at ``epoch`` when distributed, else :obj:`None` (use the loader's
    own shuffling).

    Its permutation is seeded by ``seed + epoch``, so every rank draws the same permutation and takes
    its own stride of it; the union of the ranks' ``i``-th batches of size ``b`` is the ``i``-th batch
    of size ``world_size * b`` of that permutation.

    Args:
        dataset (Dataset): The dataset.
        seed (int): Base seed.
        epoch (int): Passed to :meth:`~DistributedSampler.set_epoch`.
        shuffle (bool, optional): Shuffle. (default: :obj:`True`)
        drop_last (bool, optional): Drop the tail that does not divide evenly. (default: :obj:`True`)

    Returns:
        DistributedSampler or None
    """
    if not is_distributed():
        return None
    s = DistributedSampler(dataset, num_replicas=world_size(), rank=rank(), shuffle=shuffle, seed=seed,
                           drop_last=drop_last)
    s.set_epoch(epoch)
    return s


def shard_sampler(dataset: Dataset) -> ShardSampler | None:
    """A :class:`ShardSampler` when distributed, else :obj:`None`."""
    return ShardSampler(dataset) if is_distributed() else None


def seed_rank(seed: int, epoch: int) -> None:
    """Re-seeds the global RNGs from ``(seed, epoch, rank)`` when distributed, so ranks draw different
    augmentations and a resumed run draws what an uninterrupted one would (no per-rank RNG state needs
    saving). A no-op in one process."""
    if not is_distributed():
        return
    import random

    import numpy as np

    s = (seed * 1_000_003 + epoch * 7_919 + rank() * 104_729) % 2**63
    torch.manual_seed(s)
    np.random.seed(s % 2**32)
    random.seed(s)
