"""The network structure walk, and the pieces a table times.

:mod:`gasgnn.latency` stores and uses the numbers; this module says *what* a network of a search
space is made of (one :class:`LatencyKey` per piece), builds each piece as a module with inputs of its
real shape, and times it on a latency backend (:mod:`gasgnn.latency.backends`) with
:func:`gasgnn.latency.timing.time_call`.

A network is decomposed into exactly the calls that :class:`~gasgnn.models.net.GASNet` makes: the stem, each
cell's two pre-processing adapters, one op per kept edge, one Python ``sum`` per intermediate node, the
output concatenation, the head and the final bilinear upsampling. Each piece is timed as that same call
on an input of its real shape.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gasgnn.latency.backends import LatencyBackend, PieceFn, make_backend
from gasgnn.latency.keys import KINDS, PRE_TYPES, LatencyKey
from gasgnn.latency.timing import COLD_BYTES, time_call
from gasgnn.models import build_head
from gasgnn.space import FactorizedReduce, ReLUConvBN, Stem, build_op

__all__ = ["MIN_ENTRY_MS", "CellPlan", "genotype_plans", "measure_key", "piece", "piece_runner", "space_plans",
           "unique", "walk"]

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
# The pieces, and timing them.

#: The smallest entry (ms) a measurement stores: a piece a runtime removes entirely (an identity in ONNX
#: Runtime) still gets a positive time, as a table entry must have.
MIN_ENTRY_MS = 1e-4


def _sum(*xs: Tensor) -> Tensor:
    return sum(xs)  # Python sum, as a derived cell does (0 + a + b)


def _concat(*xs: Tensor) -> Tensor:
    return torch.cat(xs, dim=1)


class _Upsample:
    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size

    def __call__(self, x: Tensor) -> Tensor:
        return F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)


@torch.no_grad()
def piece(key: LatencyKey, device: str | torch.device = "cpu",
          dtype: torch.dtype | None = None) -> tuple[nn.Module, tuple[Tensor, ...], int]:
    """The call that ``key`` stands for, as a module in eval mode on random inputs of its shape.

    Args:
        key (LatencyKey): The piece.
        device (str or torch.device, optional): Where. (default: :obj:`"cpu"`)
        dtype (torch.dtype, optional): :obj:`None` uses the key's. (default: :obj:`None`)

    Returns:
        (nn.Module, tuple of Tensor, int): the module (a :class:`~gasgnn.latency.backends.PieceFn` for a
        node sum, a concatenation or the upsampling), its inputs, and the bytes one call touches.
    """
    device, dtype = torch.device(device), dtype or getattr(torch, key.dtype)
    p = dict(zip(KINDS[key.kind], key.params))
    N = key.batch

    def rand(C: int, H: int, W: int) -> Tensor:
        return torch.randn(N, C, H, W, device=device, dtype=dtype)

    def module(m: nn.Module) -> nn.Module:
        return m.to(device=device, dtype=dtype).eval()

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
        xs = tuple(rand(p["C"], p["H"], p["W"]) for _ in range(p["n"]))
        return PieceFn(_sum if key.kind == "sum" else _concat), xs, 2 * sum(t.nbytes for t in xs)
    elif key.kind == "upsample":
        x = rand(p["C"], p["H"], p["W"])
        nbytes = x.nbytes * (1 + (p["H_out"] * p["W_out"]) // max(1, p["H"] * p["W"]))
        return PieceFn(_Upsample((p["H_out"], p["W_out"]))), (x,), nbytes
    else:
        raise ValueError(f"unknown latency entry kind '{key.kind}'")
    return m, (x,), 2 * x.nbytes + sum(t.nbytes for t in m.parameters())


def piece_runner(key: LatencyKey, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                 cold_bytes: int | None = None, backend: LatencyBackend | None = None) -> Callable[[], Any]:
    """A zero-argument call of the piece ``key`` on ``backend`` (default: eager ``torch``).

    In a network every piece runs once per forward, on an input another piece just wrote and with
    weights last touched a whole forward ago. Timing one module on one input in a loop keeps both hot in
    the cache and underestimates that; so the call cycles through independent copies (module and input)
    whose total size reaches ``cold_bytes`` (at most 64 copies; :obj:`None` means :data:`COLD_BYTES`, ``0``
    one copy: on CUDA the timer flushes the L2 instead; a backend without
    :attr:`~gasgnn.latency.backends.LatencyBackend.cold_copies` always times one copy).
    """
    device = torch.device(device)
    dtype = dtype or getattr(torch, key.dtype)
    backend = backend or make_backend("torch", device, dtype)
    cold_bytes = 0 if not backend.cold_copies else COLD_BYTES if cold_bytes is None else cold_bytes
    m, xs, nbytes = piece(key, device, dtype)
    extra = min(63, max(0, math.ceil(cold_bytes / max(nbytes, 1)) - 1))
    first = [(m, xs)]

    def make() -> tuple[nn.Module, tuple[Tensor, ...]]:
        return first.pop() if first else piece(key, device, dtype)[:2]

    copies = backend.prepare_copies(make, 1 + extra)
    if len(copies) == 1:
        return copies[0]
    cycle = itertools.cycle(copies)
    return lambda: next(cycle)()


def measure_key(key: LatencyKey, device: str | torch.device = "cpu", warmup: int = 10, repeats: int = 50,
                backend: LatencyBackend | None = None) -> float:
    """Times the piece ``key`` on ``device`` and ``backend`` (median milliseconds, less the backend's
    per-call overhead, at least :data:`MIN_ENTRY_MS`).

    Args:
        key (LatencyKey): The piece.
        device (str or torch.device, optional): Where. (default: :obj:`"cpu"`)
        warmup (int, optional): Untimed calls. (default: :obj:`10`)
        repeats (int, optional): Timed samples, median taken. (default: :obj:`50`)
        backend (LatencyBackend, optional): :obj:`None` is eager ``torch``. (default: :obj:`None`)
    """
    device = torch.device(device)
    backend = backend or make_backend("torch", device, key.dtype)
    fn = piece_runner(key, device, None, 0 if device.type == "cuda" else None, backend)
    ms = time_call(fn, device, warmup, repeats) - backend.call_overhead_ms()
    return max(float(ms), MIN_ENTRY_MS)


def unique(keys: Iterable[LatencyKey]) -> list[LatencyKey]:
    """Distinct keys in first-seen order."""
    return list(dict.fromkeys(keys))
