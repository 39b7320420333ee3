"""Deterministic data loaders and the bi-level search split."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

__all__ = [
    "Loader", "default_workers", "kept_on_gpu", "make_loader", "search_loaders", "seed_worker", "split_search",
    "worker_error",
]


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` that seeds :mod:`random` and :mod:`numpy` from the worker's torch seed.

    :class:`~torch.utils.data.DataLoader` already seeds torch in each worker with
    ``base_seed + worker_id``, where ``base_seed`` comes from the loader's generator; this extends
    the same seed to the other RNGs a transform might use.

    Args:
        worker_id (int): Worker index (unused; the torch seed already includes it).
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def worker_error(e: BaseException) -> BaseException:
    """The error a data-loader worker raised, as that worker raised it: PyTorch re-raises it in the main
    process with the worker's whole traceback in the message (``Caught DatasetError in DataLoader worker
    process 0. Original Traceback ...``); this gives the same type with the worker's own one-line message."""
    msg = str(e)
    if "Original Traceback" not in msg:
        return e
    last = [ln for ln in msg.strip().splitlines() if ln.strip()][-1]
    text = last.split(": ", 1)[1] if ": " in last else last
    try:
        return type(e)(text)
    except Exception:  # a type that takes other arguments keeps the long message
        return e


class Loader(DataLoader):
    """A :class:`~torch.utils.data.DataLoader` whose worker errors reach the caller as the dataset's own
    message (:func:`worker_error`), the same as with ``num_workers=0``."""

    def __iter__(self) -> Any:
        it = super().__iter__()
        if self.num_workers == 0:
            return it
        return self._clean(it)

    @staticmethod
    def _clean(it: Any) -> Any:
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            except Exception as e:
                clean = worker_error(e)
                if clean is e:
                    raise
                raise clean from None
            yield batch


def kept_on_gpu(dataset: Dataset) -> bool:
    """Whether ``dataset`` (or the dataset under a :class:`~torch.utils.data.Subset`) keeps its decoded
    samples on a GPU (:meth:`gasgnn.data.base.SegmentationDataset.keep_decoded`)."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    dev = getattr(dataset, "keep_device", None)
    return dev is not None and dev.type == "cuda"


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    num_workers: int = 0,
    seed: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    **kwargs: Any,
) -> DataLoader:
    """Builds a :class:`~torch.utils.data.DataLoader` whose shuffling and augmentation are a
    function of ``seed``.

    The loader gets a :class:`torch.Generator` seeded with ``seed`` (it drives the shuffle order
    and each epoch's worker seeds) and :func:`seed_worker` as ``worker_init_fn``. With the same
    seed, dataset and ``num_workers``, the sequence of batches is identical across runs, epoch by
    epoch. Random transforms drawing from the global torch RNG are reproducible with
    ``num_workers > 0``; with ``num_workers=0`` they run in the main process, so seed it
    (``torch.manual_seed``) as well.

    Args:
        dataset (Dataset): The dataset.
        batch_size (int): Samples per batch.
        shuffle (bool, optional): Reshuffle every epoch. (default: :obj:`False`)
        num_workers (int, optional): Loader processes. (default: :obj:`0`)
        seed (int, optional): Seed of the loader generator. (default: :obj:`0`)
        drop_last (bool, optional): Drop the last incomplete batch. (default: :obj:`False`)
        pin_memory (bool, optional): Pin batches (for GPU transfer). (default: :obj:`False`)
        persistent_workers (bool, optional): Keep workers between epochs. (default: :obj:`False`)
        **kwargs: Other :class:`~torch.utils.data.DataLoader` arguments (``collate_fn``,
            ``prefetch_factor``, ...).

    Returns:
        DataLoader: The loader (a :class:`Loader`: errors raised in its workers keep the dataset's message);
        batches are ``(images [N, 3, H, W], masks [N, H, W])``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    if kept_on_gpu(dataset):  # samples already on the GPU: no worker processes, nothing to pin
        num_workers, pin_memory = 0, False
    g = torch.Generator()
    g.manual_seed(int(seed))
    return Loader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=persistent_workers and num_workers > 0,
        worker_init_fn=seed_worker if num_workers > 0 else None,
        generator=g,
        **kwargs,
    )


def split_search(dataset: Dataset, seed: int = 0, fraction: float = 0.5) -> tuple[Subset, Subset]:
    """Splits a dataset into the two disjoint halves of a bi-level architecture search: one to
    train the network weights, one to update the architecture parameters.

    The split is a seeded random permutation: deterministic for ``seed``, disjoint, and covering
    every index exactly once.

    Args:
        dataset (Dataset): Dataset with ``__len__`` (at least 2 samples).
        seed (int, optional): Permutation seed. (default: :obj:`0`)
        fraction (float, optional): Share of samples in the weights half, in ``(0, 1)``; it is
            rounded so that both halves are non-empty. (default: :obj:`0.5`)

    Returns:
        (Subset, Subset): ``(weights_subset, arch_subset)``; their ``indices`` are sorted.
    """
    n = len(dataset)  # type: ignore[arg-type]
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    if n < 2:
        raise ValueError(f"split_search needs at least 2 samples, got {n}")
    g = torch.Generator()
    g.manual_seed(int(seed))
    perm = torch.randperm(n, generator=g)
    k = min(max(int(round(n * fraction)), 1), n - 1)
    first = sorted(perm[:k].tolist())
    second = sorted(perm[k:].tolist())
    return Subset(dataset, first), Subset(dataset, second)


LoaderFactory = Callable[[int], DataLoader]


def default_workers(device: str | torch.device) -> int:
    """Loader processes when ``--workers`` is ``auto``: none on the CPU, where they would take the cores
    the step computes on; on CUDA up to 4, leaving a core to the main process (split between the
    processes of a ``torchrun`` node)."""
    if torch.device(device).type != "cuda":
        return 0
    per_node = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(0, min(4, ((os.cpu_count() or 1) - per_node) // per_node))


def search_loaders(
    name: str, root: Any, input_size: Sequence[int], batch_size: int, seed: int = 0,
    scale_range: Sequence[float] | None = None, num_workers: int = 0, dataset_kwargs: dict | None = None,
    pin_memory: bool = False,
) -> tuple[LoaderFactory, LoaderFactory, LoaderFactory, Any]:
    """The loaders of a bi-level search, as epoch-seeded factories ``f(epoch) -> DataLoader``.

    The training split is halved with :func:`split_search`; the weights half and the architecture half
    get the training augmentation, and the architecture half is also served without augmentation
    (for the per-epoch mIoU). A factory re-seeds its loader from the epoch, so a resumed search sees the
    same batches as an uninterrupted one. Inside a ``torch.distributed`` process group the loaders
    shard the halves over the ranks (:func:`gasgnn.distributed.train_sampler`, ``batch_size`` per
    rank) and the mIoU set without padding (:class:`gasgnn.distributed.ShardSampler`).

    Args:
        name (str): Registered dataset name.
        root (str or PathLike, optional): Dataset root.
        input_size ((int, int)): Crop ``(H, W)``.
        batch_size (int): Images per batch.
        seed (int, optional): Seed of the split and of the loaders. (default: :obj:`0`)
        scale_range ((float, float), optional): Random-scale range; :obj:`None` centres it on
            ``input_size / image size`` (0.75x to 1.25x). (default: :obj:`None`)
        num_workers (int, optional): Loader processes (:func:`default_workers` is a good choice).
            (default: :obj:`0`)
        dataset_kwargs (dict, optional): Passed to :func:`~gasgnn.data.build_dataset`. (default: :obj:`None`)
        pin_memory (bool, optional): Pinned batches, for asynchronous copies to a GPU. (default: :obj:`False`)

    Returns:
        (weights_loader, arch_loader, val_loader, dataset): three factories and the un-augmented
        training set (for ``num_classes``, ``ignore_index``).
    """
    from gasgnn import distributed as dist

    from .registry import build_dataset
    from .transforms import eval_transform, train_transform

    kw = dict(dataset_kwargs or {})
    size = (int(input_size[0]), int(input_size[1]))
    base = build_dataset(name, root, "train", **kw)
    if scale_range is None:  # centre the random scale on the search resolution
        h, w = base.image_size(0)
        f = max(size[0] / h, size[1] / w)
        scale_range = (0.75 * f, 1.25 * f)
    aug = build_dataset(name, root, "train",
                        transform=train_transform(size, scale_range, ignore_index=base.ignore_index), **kw)
    plain = build_dataset(name, root, "train", transform=eval_transform(size), **kw)
    w_half, a_half = split_search(base, seed=seed)

    def factory(indices: list[int], ds: Any, shuffle: bool, offset: int) -> LoaderFactory:
        def build(epoch: int) -> DataLoader:
            sub, s0 = Subset(ds, indices), seed * 100003 + offset
            s = s0 + 2 * epoch
            # Distributed: each rank takes its stride of one shared permutation seeded by s (the halves),
            # or an unpadded shard (the mIoU set); batch_size is then per rank.
            sampler = dist.train_sampler(sub, s0, 2 * epoch) if shuffle else dist.shard_sampler(sub)
            if sampler is None:
                return make_loader(sub, batch_size, shuffle=shuffle, num_workers=num_workers, seed=s,
                                   drop_last=shuffle, pin_memory=pin_memory)
            return make_loader(sub, batch_size, sampler=sampler, num_workers=num_workers,
                               seed=s + 1_000_003 * dist.rank(), drop_last=shuffle, pin_memory=pin_memory)

        return build

    return (factory(w_half.indices, aug, True, 0), factory(a_half.indices, aug, True, 1),
            factory(a_half.indices, plain, False, 0), base)
