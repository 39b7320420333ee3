"""Latency table keys, the network structure walk, and on-device timing.

:mod:`gasgnn.latency` stores and uses the numbers; this module says *what* a network of a search
space is made of (one :class:`LatencyKey` per piece) and *how* each piece is timed on a device.

A network is decomposed into exactly the calls that :class:`~gasgnn.models.net.GASNet` makes: the stem, each
cell's two pre-processing adapters, one op per kept edge, one Python ``sum`` per intermediate node, the
output concatenation, the head and the final bilinear upsampling. Each piece is timed as that same call
on an input of its real shape.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gasgnn.latency.keys import KINDS, PRE_TYPES, LatencyKey
from gasgnn.models import build_head
from gasgnn.space import FactorizedReduce, ReLUConvBN, Stem, build_op
from gasgnn.utils import device_sync

# ------------------------------------------------------------------------------------------------
# The structure walk: which pieces a network is made of.


class CellPlan(NamedTuple):
    """The structure of one cell for the walk: channels, reduction, op edges, concat and sum sizes."""

    channels: int
    reduction: bool
    edges: Sequence[tuple[int, int, str]]
    concat_len: int
    sum_terms: dict[int, int]


def _half(size: tuple[int, int]) -> tuple[int, int]:
    return math.ceil(size[0] / 2), math.ceil(size[1] / 2)


def walk(
    space: Any, cells: Sequence[CellPlan], input_size: tuple[int, int], head: str | None, head_channels: int,
    dtype: str, batch: int,
) -> Iterator[tuple[LatencyKey, int]]:
    """Yields ``(key, cell)`` for every piece of a network, in execution order (``cell = -1`` for the stem,
    head and upsampling). Mirrors :class:`~gasgnn.models.net.GASNet` (and the DARTS cell pre-processing).

    Args:
        space (SearchSpace): Stem, channels and classes.
        cells (sequence of CellPlan): One plan per cell.
        input_size (tuple): Image ``(H, W)``.
        head (str, optional): Head name; :obj:`None` stops after the last cell.
        head_channels (int): Head width.
        dtype (str): Dtype name for the keys.
        batch (int): Batch size for the keys.
    """

    def key(kind: str, *params: Any) -> LatencyKey:
        return LatencyKey(kind, tuple(params), dtype, batch)

    size = tuple(input_size)
    convs = space.stem_stride.bit_length() - 1
    yield key("stem", space.in_channels, space.stem_channels, convs, *size), -1
    for _ in range(convs):
        size = _half(size)
    size0 = size1 = size
    C_pp = C_p = space.stem_channels
    red_prev = False
    for k, cell in enumerate(cells):
        C = cell.channels
        yield key("pre", PRE_TYPES[int(red_prev)], C_pp, C, *size0), k
        yield key("pre", "relu_conv_bn", C_p, C, *size1), k
        out = _half(size1) if cell.reduction else size1
        for s, _, o in cell.edges:
            if o != "none":
                stride = 2 if cell.reduction and s < 2 else 1
                yield key("op", o, C, stride, *(size1 if s < 2 else out)), k
        for n in cell.sum_terms.values():
            yield key("sum", n, C, *out), k
        yield key("concat", cell.concat_len, C, *out), k
        size0, size1 = size1, out
        C_pp, C_p, red_prev = C_p, C * cell.concat_len, cell.reduction
    if head is not None:
        yield key("head", head, C_p, space.num_classes, head_channels, *size1), -1
        yield key("upsample", space.num_classes, *size1, *input_size), -1


def space_plans(space: Any, kept: int = 2) -> list[CellPlan]:
    """Cell plans covering every candidate op of every edge of ``space``; node sums of ``min(kept, d)``
    terms and a full concat, as in a network derived with ``kept`` inputs per node."""
    edges = [(s, d, o) for s, d in space.cell_edges() for o in space.ops]
    sums = {d: min(kept, d) for d in range(2, space.num_nodes + 2)}
    return [CellPlan(C, space.is_reduction(k), edges, space.num_nodes, sums)
            for k, C in enumerate(space.cell_channels())]


def genotype_plans(genotype: Any) -> list[CellPlan]:
    """Cell plans of a derived :class:`~gasgnn.genotype.genotype.Genotype` (its kept edges, sums and concat)."""
    plans = []
    for c in genotype.cells:
        sums: dict[int, int] = {}
        for _, d, _ in c.edges:
            sums[d] = sums.get(d, 0) + 1
        plans.append(CellPlan(c.channels, c.reduction, c.edges, len(c.concat), dict(sorted(sums.items()))))
    return plans


# ------------------------------------------------------------------------------------------------
# Timing.


BLOCK_MS = 2.0
"""Minimum duration (ms) of one timed block of calls in :func:`time_call`."""


def time_call(fn: Callable[[], Any], device: str | torch.device = "cpu", warmup: int = 10,
              repeats: int = 50, block_ms: float = BLOCK_MS) -> float:
    """Median wall time of one ``fn()`` call in milliseconds, after ``warmup`` untimed calls.

    Each of the ``repeats`` samples times a block of back-to-back calls lasting at least ``block_ms``
    (one call when the call is slower), divided by the calls in the block. Blocks keep sub-millisecond
    ops off the timer's resolution and let an op and a whole network see background load the same way.
    On a GPU each block ends with :func:`torch.cuda.synchronize`, so the time covers the kernels and
    not only their launch.
    """
    device = torch.device(device)

    def sync() -> None:
        device_sync(device)

    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        sync()
        n, t = 1, time.perf_counter()
        fn()
        sync()
        once = time.perf_counter() - t
        if block_ms > 0 and once > 0:
            n = max(1, min(10_000, int(block_ms / 1000.0 / once)))
        times = []
        for _ in range(max(1, repeats)):
            t = time.perf_counter()
            for _ in range(n):
                fn()
            sync()
            times.append((time.perf_counter() - t) / n)
    return 1000.0 * statistics.median(times)


COLD_BYTES = 32 * 2**20
"""Working set (bytes) a timed piece cycles through; see :func:`_runner`."""


def _runner(key: LatencyKey, device: torch.device, dtype: torch.dtype,
            cold_bytes: int | None = None) -> Callable[[], Any]:
    """The call that ``key`` stands for, on random inputs of its shape (modules in eval mode).

    In a network every piece runs once per forward, on an input another piece just wrote and with
    weights last touched a whole forward ago. Timing one module on one input in a loop keeps both hot in
    the cache and underestimates that; so the call cycles through independent copies (module and input)
    whose total size reaches ``cold_bytes`` (at most 64 copies; :obj:`None` means :data:`COLD_BYTES`).
    """
    cold_bytes = COLD_BYTES if cold_bytes is None else cold_bytes
    p = dict(zip(KINDS[key.kind], key.params))
    N = key.batch

    def rand(C: int, H: int, W: int) -> Tensor:
        return torch.randn(N, C, H, W, device=device, dtype=dtype)

    def module(m: nn.Module) -> nn.Module:
        return m.to(device=device, dtype=dtype).eval()

    def make() -> tuple[Callable[[], Any], int]:
        if key.kind == "op":
            m, x = module(build_op(p["op"], p["C"], p["stride"], affine=True)), rand(p["C"], p["H"], p["W"])
        elif key.kind == "stem":
            m, x = module(Stem(p["C_in"], p["C_out"], num_convs=p["convs"])), rand(p["C_in"], p["H"], p["W"])
        elif key.kind == "pre":
            if p["type"] == "factorized_reduce":
                m = module(FactorizedReduce(p["C_in"], p["C_out"], affine=True))
            else:
                m = module(ReLUConvBN(p["C_in"], p["C_out"], 1, 1, 0, affine=True))
            x = rand(p["C_in"], p["H"], p["W"])
        elif key.kind == "head":
            m = module(build_head(p["head"], p["C_in"], p["classes"], channels=p["channels"]))
            x = rand(p["C_in"], p["H"], p["W"])
        elif key.kind in ("sum", "concat"):
            xs = [rand(p["C"], p["H"], p["W"]) for _ in range(p["n"])]
            nbytes = 2 * sum(t.nbytes for t in xs)
            if key.kind == "sum":
                return (lambda: sum(xs)), nbytes  # Python sum, as a derived cell does (0 + a + b)
            return (lambda: torch.cat(xs, dim=1)), nbytes
        elif key.kind == "upsample":
            x, size = rand(p["C"], p["H"], p["W"]), (p["H_out"], p["W_out"])
            nbytes = x.nbytes * (1 + (p["H_out"] * p["W_out"]) // max(1, p["H"] * p["W"]))
            return (lambda: F.interpolate(x, size=size, mode="bilinear", align_corners=False)), nbytes
        else:
            raise ValueError(f"unknown latency entry kind '{key.kind}'")
        nbytes = 2 * x.nbytes + sum(t.nbytes for t in m.parameters())
        return (lambda: m(x)), nbytes

    first, nbytes = make()
    extra = min(63, max(0, math.ceil(cold_bytes / max(nbytes, 1)) - 1))
    copies = [first] + [make()[0] for _ in range(extra)]
    if len(copies) == 1:
        return first
    cycle = itertools.cycle(copies)
    return lambda: next(cycle)()


def measure_key(
    key: LatencyKey, device: str | torch.device = "cpu", warmup: int = 10, repeats: int = 50
) -> float:
    """Times the piece ``key`` on ``device`` (median milliseconds)."""
    device = torch.device(device)
    with torch.inference_mode():
        fn = _runner(key, device, getattr(torch, key.dtype))
    return time_call(fn, device, warmup, repeats)


def measure_networks(
    nets: Sequence[nn.Module], x: Tensor, warmup: int = 3, repeats: int = 15, rounds: int = 3,
    progress: bool = False, desc: str = "networks", anchors: Sequence[tuple[Callable[[], Any], float]] = (),
) -> list[float]:
    """End-to-end median latency (ms) of each network on input ``x``.

    Networks are timed round-robin (``rounds`` passes of ``repeats // rounds`` calls each) so that a
    burst of load from other processes spreads over all networks instead of inflating a few.

    With ``anchors`` (pairs of a call and its latency in the table), each timed block of a network is
    followed by one timing of every anchor, and the block's time is divided by the machine's speed at that
    moment (the median of anchor time / table time): the result is the network's latency at the speed the
    table was measured at. On a host whose speed drifts by tens of percent within a minute (a shared VM),
    this keeps the drift out of the ranking (docs/latency.md).
    """
    from tqdm.auto import tqdm


    def sync() -> None:
        device_sync(x.device)

    per_round = max(1, math.ceil(repeats / max(1, rounds)))
    times: list[list[float]] = [[] for _ in nets]
    with torch.inference_mode():
        for net in nets:
            for _ in range(warmup):
                net(x)
        bar = tqdm(total=rounds * len(nets), desc=desc, unit="net", disable=not progress, leave=False)
        for fn, _ in anchors:
            fn()
        for _ in range(max(1, rounds)):
            for i, net in enumerate(nets):
                sync()
                block = []
                for _ in range(per_round):
                    t = time.perf_counter()
                    net(x)
                    sync()
                    block.append(time.perf_counter() - t)
                speed = statistics.median(_time_once(fn, sync) / ms for fn, ms in anchors) if anchors else 1.0
                times[i] += [b / speed for b in block]
                bar.update()
        bar.close()
    return [1000.0 * statistics.median(t) for t in times]


def _time_once(fn: Callable[[], Any], sync: Callable[[], None]) -> float:
    """Milliseconds of one ``fn()`` call, synchronised."""
    sync()
    t = time.perf_counter()
    fn()
    sync()
    return (time.perf_counter() - t) * 1e3


def unique(keys: Iterable[LatencyKey]) -> list[LatencyKey]:
    """Distinct keys in first-seen order."""
    return list(dict.fromkeys(keys))


# ------------------------------------------------------------------------------------------------
# Validation: the table's predictions against real end-to-end latencies.


def agreement(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """Pearson and Spearman correlation and the mean absolute percentage error (MAPE, %) of
    ``predicted`` against ``measured`` (correlations are NaN with fewer than 3 points or no spread)."""
    import numpy as np
    from scipy import stats

    p, m = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    out = {"mape": float(np.mean(np.abs(p - m) / m) * 100) if len(m) else math.nan,
           "bias": float(np.mean((p - m) / m) * 100) if len(m) else math.nan,
           "pearson": math.nan, "spearman": math.nan}
    if len(p) >= 3 and np.ptp(p) > 0 and np.ptp(m) > 0:
        out["pearson"] = float(stats.pearsonr(p, m)[0])
        out["spearman"] = float(stats.spearmanr(p, m)[0])
    return out


def validate(
    table: Any, space: Any, sizes: Sequence[tuple[int, int]] | None = None, n: int = 20, head: str = "aspp",
    head_channels: int = 128, seed: int = 0, warmup: int = 3, repeats: int = 15, rounds: int = 3,
    measure_missing: bool = True, path: str | None = None, progress: bool = True, genotypes: Sequence | None = None,
    anchors: int = 8,
) -> dict[str, Any]:
    """Compares the table's predictions with measured end-to-end latencies of random derived networks
    (or of ``genotypes``; :func:`gasgnn.latency.noise.validate_with_noise` passes ones spanning the range).

    Samples ``n`` genotypes (:func:`~gasgnn.genotype.genotype.random_genotype`), builds each
    :class:`~gasgnn.models.net.GASNet` and, for every input size, measures its latency on the table's device
    (see :func:`measure_networks`) and reports :func:`agreement` with :meth:`LatencyTable.predict`.

    Args:
        table (LatencyTable): The table (missing entries are measured when ``measure_missing``).
        space (SearchSpace): The space to sample from.
        sizes (list of tuple, optional): Input sizes; :obj:`None` uses ``space.input_size``.
            (default: :obj:`None`)
        n (int, optional): Networks. (default: :obj:`20`)
        head (str, optional): Head. (default: :obj:`"aspp"`)
        head_channels (int, optional): Head width. (default: :obj:`128`)
        seed (int, optional): Sampling seed. (default: :obj:`0`)
        warmup (int, optional): Untimed calls per network. (default: :obj:`3`)
        repeats (int, optional): Timed calls per network. (default: :obj:`15`)
        rounds (int, optional): Round-robin passes. (default: :obj:`3`)
        measure_missing (bool, optional): Measure missing entries. (default: :obj:`True`)
        path (str, optional): Table file to save new entries into. (default: :obj:`None`)
        progress (bool, optional): Progress bars. (default: :obj:`True`)
        anchors (int, optional): Speed anchors: the costliest table entries of the networks, timed after
            every block of network calls to express the measurements at the table's machine speed (see
            :func:`measure_networks`); ``0`` reports raw wall times. (default: :obj:`8`)

    Returns:
        dict: ``sizes`` (per size: ``input_size``, ``pearson``, ``spearman``, ``mape``, ``bias``,
        ``predicted_ms``, ``measured_ms``), plus ``n``, ``head``, ``seed``, ``threads``, ``loadavg_before``,
        ``loadavg_after``, ``seconds`` and ``genotypes`` (the networks' genotype JSON objects, aligned with
        ``predicted_ms``/``measured_ms``, so the output can become a
        :class:`~gasgnn.search.dataset.GenotypeDataset`).
    """
    import os

    from gasgnn.genotype import random_genotype
    from gasgnn.models import GASNet

    t0 = time.perf_counter()
    sizes = [tuple(space.input_size)] if not sizes else [tuple(int(v) for v in s) for s in sizes]
    gen = torch.Generator().manual_seed(seed)
    genotypes = list(genotypes) if genotypes else [random_genotype(space, gen) for _ in range(n)]
    n = len(genotypes)
    device, dtype = torch.device(table.meta["device"]), getattr(torch, table.dtype)
    out: dict[str, Any] = {"n": n, "head": head, "seed": seed, "threads": torch.get_num_threads(), "anchors": anchors,
                           "loadavg_before": list(os.getloadavg()), "sizes": []}
    torch.manual_seed(seed)
    nets = [GASNet(g, space, head=head, head_channels=head_channels).to(device, dtype).eval()
            for g in genotypes]
    for size in sizes:
        keys = [k for g in genotypes for k, _ in table.genotype_keys(g, space, size, head, head_channels)]
        table.ensure_keys(keys, measure_missing=measure_missing, path=path, progress=progress)
        predicted = [table.predict(g, head, space, size, head_channels) for g in genotypes]
        x = torch.randn(table.batch, space.in_channels, *size, device=device, dtype=dtype)
        costly = sorted(unique(keys), key=lambda k: -table[k])[:anchors]
        refs = [(_runner(k, device, dtype), table[k]) for k in costly]
        measured = measure_networks(nets, x, warmup, repeats, rounds, progress,
                                    desc=f"networks {size[0]}x{size[1]}", anchors=refs)
        out["sizes"].append({"input_size": list(size), **agreement(predicted, measured),
                             "predicted_ms": predicted, "measured_ms": measured})
    out["loadavg_after"] = list(os.getloadavg())
    out["seconds"] = time.perf_counter() - t0
    out["genotypes"] = [g.to_dict() for g in genotypes]
    return out
