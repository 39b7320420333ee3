"""Random search, the supplement's baseline: sample genotypes under a latency target, train each
briefly on the weights half, keep the best on the architecture half.

It writes the same run directory as :class:`gasgnn.search.Searcher` (``guide = "random"``), so the
drawings and ``gasgnn compare`` treat it like any other run.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from gasgnn.genotype import Genotype, random_genotype
from gasgnn.latency import LatencyTable, lighten
from gasgnn.metrics import ConfusionMatrix
from gasgnn.models import GASNet
from gasgnn.runner import RunDir
from gasgnn.space import SearchSpace


@dataclass
class RandomSearchResult:
    """The outcome of :func:`random_search`.

    Args:
        genotype (Genotype): The best sampled genotype.
        miou (float): Its mIoU on the architecture half after the brief training.
        predicted_latency_ms (float, optional): The table's latency for it.
        trials (list): One dict per trained candidate (index, miou, predicted_latency_ms).
    """

    genotype: Genotype
    miou: float
    predicted_latency_ms: float | None
    trials: list[dict[str, Any]]


def train_briefly(
    genotype: Genotype, train_batches: Iterable, val_batches: Iterable, steps: int, lr: float = 0.02,
    head: str = "aspp", ignore_index: int = 255, device: str | torch.device = "cpu",
) -> float:
    """Trains a :class:`GASNet` for ``steps`` SGD steps and returns its mIoU on ``val_batches``.

    Args:
        genotype (Genotype): The network to train (``genotype.space`` gives classes and stem).
        train_batches (iterable): Batches ``(images, masks)``, re-iterated (a shuffling DataLoader
            reshuffles and re-augments) when shorter than ``steps``.
        val_batches (iterable): Batches for the mIoU.
        steps (int): Training steps.
        lr (float, optional): SGD learning rate, polynomially decayed. (default: :obj:`0.02`)
        head (str, optional): Head. (default: :obj:`"aspp"`)
        ignore_index (int, optional): (default: :obj:`255`)
        device (str or torch.device, optional): (default: :obj:`"cpu"`)
    """
    net = GASNet(genotype, head=head).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=max(steps, 1), power=0.9)
    net.train()
    for x, y in itertools.islice(_passes(train_batches), steps):
        x, y = x.to(device), y.to(device)
        loss = F.cross_entropy(net(x), y, ignore_index=ignore_index)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    num_classes = genotype.space.num_classes if genotype.space is not None else SearchSpace().num_classes
    cm = ConfusionMatrix(num_classes, ignore_index=ignore_index)
    with torch.no_grad():
        for x, y in val_batches:
            cm.update(net(x.to(device)).argmax(1), y.to(device))
    return float(cm.compute()["miou"])


def _passes(batches: Iterable) -> Iterator:
    """Endless batches: a new pass over ``batches`` each time one ends. Unlike ``itertools.cycle``, which
    replays the saved first pass, a DataLoader draws a new order and new augmentations every pass."""
    while True:
        empty = True
        for b in batches:
            empty = False
            yield b
        if empty:
            return


SAMPLERS = ("uniform", "lighten")


def sample_under_target(
    space: SearchSpace, n: int, table: LatencyTable | None = None, target_ms: float | None = None,
    head: str = "aspp", generator: torch.Generator | None = None, max_tries: int = 10000,
    sampler: str = "uniform",
) -> list[tuple[Genotype, float | None]]:
    """Samples ``n`` distinct random genotypes whose predicted latency is at most ``target_ms``.

    Args:
        space (SearchSpace): The space to sample from.
        n (int): Genotypes to return.
        table (LatencyTable, optional): Predicts each sample's latency.
        target_ms (float, optional): Latency bound; :obj:`None` keeps every sample.
        head (str, optional): Head of the prediction. (default: :obj:`"aspp"`)
        generator (torch.Generator, optional): Source of randomness.
        max_tries (int, optional): Samples drawn at most. (default: :obj:`10000`)
        sampler (str, optional): ``"uniform"`` rejects uniform samples over the target (exact uniform
            distribution under the bound, but a bound far below the space's typical latency admits
            nothing); ``"lighten"`` takes each uniform sample over the target down a random walk (a random
            edge gets a random op that the table says is cheaper on it) until it fits, so any target above the
            lightest network is reached, at the price of a bias towards light ops.
            (default: :obj:`"uniform"`)

    Raises:
        ValueError: if fewer than ``n`` are found in ``max_tries`` samples (the target is too tight),
            or ``sampler`` is unknown.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"random search: unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if sampler == "lighten" and (table is None or target_ms is None):
        raise ValueError("random search: the 'lighten' sampler needs a latency table and a target (--target-ms)")
    out: list[tuple[Genotype, float | None]] = []
    seen = set()
    for _ in range(max_tries):
        g = random_genotype(space, generator)
        pred = float(table.predict(g, head=head)) if table is not None else None
        if target_ms is not None and pred is not None and pred > target_ms:
            if sampler == "uniform":
                continue
            lit = lighten(g, table, target_ms, head=head, generator=generator)
            if lit is None:
                continue
            g, pred = lit
        key = tuple(g.cells)
        if key in seen:
            continue
        seen.add(key)
        out.append((g, pred))
        if len(out) == n:
            return out
    hint = "" if sampler == "lighten" else " or sample with --random-sampler lighten"
    raise ValueError(
        f"random search: found {len(out)} of {n} genotypes under {target_ms} ms in {max_tries} samples; "
        f"raise the latency target{hint}"
    )


def random_search(
    space: SearchSpace, train_batches: Iterable, val_batches: Iterable, num_samples: int, steps_per_sample: int,
    table: LatencyTable | None = None, target_ms: float | None = None, head: str = "aspp", seed: int = 0,
    run_dir: str | Path | None = None, device: str | torch.device = "cpu", ignore_index: int = 255,
    progress: bool = True, extra_config: dict | None = None, sampler: str = "uniform",
) -> RandomSearchResult:
    """Random search with a training budget of ``num_samples * steps_per_sample`` steps.

    Args:
        space (SearchSpace): The search space.
        train_batches (iterable): Weights-half batches (re-iterable, e.g. a DataLoader).
        val_batches (iterable): Architecture-half batches for selection (re-iterable).
        num_samples (int): Genotypes to train.
        steps_per_sample (int): Training steps per genotype.
        table (LatencyTable, optional): For the latency filter and the predicted latency.
        target_ms (float, optional): Latency target; :obj:`None` samples without a filter.
        head (str, optional): Head. (default: :obj:`"aspp"`)
        seed (int, optional): (default: :obj:`0`)
        run_dir (str or Path, optional): Writes ``config.json``, ``trials.csv`` (one row per trial),
            ``genotype.json`` and ``summary.json`` there.
        device (str or torch.device, optional): (default: :obj:`"cpu"`)
        ignore_index (int, optional): (default: :obj:`255`)
        progress (bool, optional): Progress bar. (default: :obj:`True`)
        extra_config (dict, optional): Recorded in ``config.json``.
        sampler (str, optional): How genotypes meet ``target_ms``: ``"uniform"`` or ``"lighten"``
            (:func:`sample_under_target`). (default: :obj:`"uniform"`)
    """
    gen = torch.Generator().manual_seed(seed)
    candidates = sample_under_target(space, num_samples, table, target_ms, head, gen, sampler=sampler)
    run = RunDir(run_dir) if run_dir is not None else None
    if run is not None:
        run.write_config({
            "space": space.to_dict(), "guide": "random", "latency_weight": None, "num_samples": num_samples,
            "steps_per_sample": steps_per_sample, "target_ms": target_ms, "sampler": sampler, "seed": seed,
            **(extra_config or {}),
        })
        if table is not None:
            run.write_table(table)
    trials: list[dict[str, Any]] = []
    best: tuple[float, int] = (-1.0, -1)
    for i, (g, pred) in enumerate(tqdm(candidates, desc="random search", disable=not progress)):
        torch.manual_seed(seed + i)
        miou = train_briefly(g, train_batches, val_batches, steps_per_sample, head=head,
                             ignore_index=ignore_index, device=device)
        trials.append({"trial": i, "miou": miou, "predicted_latency_ms": pred})
        if miou > best[0]:
            best = (miou, i)
        if run is not None:
            run.write_csv(RunDir.TRIALS, trials, ["trial", "miou", "predicted_latency_ms"])
    genotype, pred = candidates[best[1]]
    if run is not None:
        run.write_genotype(genotype)
        run.write_summary({
            "name": run.path.name, "guide": "random", "latency_weight": None, "predicted_latency_ms": pred,
            "supernet_miou": None, "miou": None, "selection_miou": best[0], "measured_latency_ms": None,
        })
    return RandomSearchResult(genotype, best[0], pred, trials)
