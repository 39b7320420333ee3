"""Dataset options shared by the commands that read data (search, train, eval), and the data-parallel
options of the commands that run under ``torchrun`` (search, train)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _data_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def add_data_args(p: argparse.ArgumentParser, default: str = "camvid", workers: int | str = 2
                  ) -> argparse._ArgumentGroup:
    """Adds ``--data``, ``--root``, ``--data-arg`` and ``--workers`` (shared by search, train and eval); returns
    their group, for a command's own data options."""
    from gasgnn.data import available_datasets, dataset_root_help

    names = available_datasets()
    roots = [f"{n}: {dataset_root_help(n)}" for n in names if dataset_root_help(n)]
    rootless = [n for n in names if not dataset_root_help(n)]
    g = p.add_argument_group("data")
    g.add_argument("--data", default=default, choices=names,
                   help="dataset, a registered name (more with gasgnn --plugin; docs/extending.md) "
                        "(default: %(default)s)")
    g.add_argument("--root", type=Path, default=None,
                   help="dataset root; " + "; ".join(roots)
                        + (f" ({', '.join(rootless)}: none, generated)" if rootless else ""))
    g.add_argument("--data-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra dataset argument, value parsed as JSON when possible "
                        "(e.g. --data-arg num_images=16 --data-arg size=[64,96]); repeatable")
    g.add_argument("--workers", default=workers, metavar="auto|N",
                   help="data loader processes; 'auto': none on the CPU (they would take the cores the step "
                        "uses), up to 4 with a GPU (default: %(default)s)")
    return g


def data_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Parses the ``--data-arg KEY=VALUE`` options."""
    kw: dict[str, Any] = {}
    for item in args.data_arg:
        if "=" not in item:
            raise ValueError(f"--data-arg expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        kw[k.strip()] = _data_value(v)
    return kw


def resolve_workers(args: argparse.Namespace, device: str) -> int:
    """``--workers`` as a number (``auto``: :func:`gasgnn.data.default_workers` for ``device``); stored back."""
    import torch

    from gasgnn.data import default_workers

    if args.workers in (None, "auto"):
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        args.workers = default_workers(device)
    try:
        args.workers = int(args.workers)
    except (TypeError, ValueError):
        raise ValueError(f"--workers: expected 'auto' or a number >= 0, got {args.workers!r}") from None
    if args.workers < 0:
        raise ValueError(f"--workers: must be >= 0, got {args.workers}")
    return args.workers


def search_loaders(args: argparse.Namespace, input_size: tuple[int, int], batch_size: int, seed: int,
                   device: str = "cpu") -> tuple:
    """:func:`gasgnn.data.search_loaders` from the :func:`add_data_args` options (and ``--scale-range``): loader
    processes per ``--workers`` and pinned memory when ``device`` is a GPU."""
    import torch

    from gasgnn.data import search_loaders as build

    return build(args.data, args.root, input_size, batch_size, seed, scale_range=args.scale_range,
                 num_workers=resolve_workers(args, device), dataset_kwargs=data_kwargs(args),
                 pin_memory=torch.device(device).type == "cuda")


def add_distributed_args(p: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Adds ``--dist-backend`` and ``--sync-bn`` (search and train under ``torchrun``; see docs/distributed.md);
    returns their argument group."""
    g = p.add_argument_group("distributed (under torchrun; ignored in a single process)")
    g.add_argument("--dist-backend", choices=["auto", "nccl", "gloo"], default="auto",
                   help="torch.distributed backend: auto picks nccl with CUDA, gloo on the CPU (default: %(default)s)")
    g.add_argument("--sync-bn", action="store_true",
                   help="synchronised batch norm: statistics over the global batch (world size x --batch-size) "
                        "instead of each process's own --batch-size images")
    return g
