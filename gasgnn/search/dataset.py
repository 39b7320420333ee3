"""Genotype graphs with their measured latency (and mIoU) as a PyG dataset, to learn from many
architectures at once (e.g. a latency or accuracy predictor, ``examples/gnn_predictor.py``).

Sources:

- **run directories** (``gasgnn search`` / ``gasgnn train`` / ``gasgnn demo`` outputs): ``genotype.json``
  plus ``summary.json`` with ``measured_latency_ms`` (or ``latency_ms``), ``miou`` and
  ``predicted_latency_ms`` where known;
- **``gasgnn latency validate --json`` outputs**: their ``genotypes`` and, per input size, the
  ``measured_ms`` and the latency table's ``predicted_ms`` of every network.

Every graph is :meth:`Genotype.to_data <gasgnn.genotype.genotype.Genotype.to_data>` with one op vocabulary for the
whole dataset, plus per-graph targets ``latency_ms`` [1], ``miou`` [1] (NaN when unknown),
``table_latency_ms`` [1] (the latency table's prediction, NaN when unknown), ``input_size`` [1, 2] and
``source`` (the file it came from).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import Data, InMemoryDataset

from gasgnn.genotype import Genotype, GenotypeError, genotype_to_data, op_vocabulary
from gasgnn.runner import RunDir

_LATENCY_KEYS = ("measured_latency_ms", "latency_ms")
_MIOU_KEYS = ("miou", "best_miou", "val_miou")


def _first(obj: dict[str, Any], keys: Sequence[str]) -> float:
    for k in keys:
        v = obj.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return math.nan


def _sample(genotype: Genotype, vocab: Sequence[str], latency: float, miou: float, table: float,
            input_size: Sequence[int] | None, source: str) -> Data:
    data = genotype_to_data(genotype, vocab)
    size = list(input_size) if input_size else list(genotype.space.input_size if genotype.space else (0, 0))
    data.latency_ms = torch.tensor([latency], dtype=torch.float)
    data.miou = torch.tensor([miou], dtype=torch.float)
    data.table_latency_ms = torch.tensor([table], dtype=torch.float)
    data.input_size = torch.tensor([size], dtype=torch.long)
    data.source = source
    return data


def samples_from_run(run_dir: str | os.PathLike, vocab: Sequence[str]) -> list[Data]:
    """One sample from a run directory with ``genotype.json`` and ``summary.json``.

    Raises:
        GenotypeError: naming the directory when a file is missing or malformed.
    """
    run = Path(run_dir)
    rd = RunDir(run)
    if not rd.has(RunDir.GENOTYPE):
        raise GenotypeError(f"{run}: no {RunDir.GENOTYPE} (not a gasgnn run directory)")
    genotype = rd.read_genotype()
    try:
        summary = rd.read_summary()
    except ValueError as e:
        raise GenotypeError(str(e)) from None
    size = summary.get("input_size")
    return [_sample(genotype, vocab, _first(summary, _LATENCY_KEYS), _first(summary, _MIOU_KEYS),
                    _first(summary, ("predicted_latency_ms",)), size, str(run))]


def samples_from_validate(path: str | os.PathLike, vocab: Sequence[str]) -> list[Data]:
    """One sample per (network, input size) of a ``gasgnn latency validate --json`` output.

    Raises:
        GenotypeError: when the file has no ``genotypes`` (written by gasgnn before they were added).
    """
    obj = json.loads(Path(path).read_text())
    if not isinstance(obj, dict) or "sizes" not in obj:
        raise GenotypeError(f"{path}: not a 'gasgnn latency validate --json' output (no 'sizes')")
    if "genotypes" not in obj:
        raise GenotypeError(f"{path}: has no 'genotypes'; re-run 'gasgnn latency validate --json' with this gasgnn")
    genotypes = [Genotype.from_dict(g) for g in obj["genotypes"]]
    out = []
    for r in obj["sizes"]:
        meas, pred = r["measured_ms"], r.get("predicted_ms") or [math.nan] * len(genotypes)
        if len(meas) != len(genotypes):
            raise GenotypeError(f"{path}: {len(meas)} measurements for {len(genotypes)} genotypes")
        for i, g in enumerate(genotypes):
            out.append(_sample(g, vocab, float(meas[i]), math.nan, float(pred[i]), r["input_size"],
                               f"{path}#{i}"))
    return out


class GenotypeDataset(InMemoryDataset):
    r"""Genotype graphs with measured latency (and mIoU where known), from run directories and
    ``gasgnn latency validate --json`` outputs.

    Args:
        root (str, optional): Where the processed dataset is cached (``processed/genotypes.pt``);
            :obj:`None` keeps it in memory only. (default: :obj:`None`)
        runs (iterable of path, optional): Run directories, or folders searched recursively for
            ``genotype.json``. (default: ``()``)
        validate (iterable of path, optional): ``latency validate --json`` files. (default: ``()``)
        vocab (sequence of str, optional): The op vocabulary; :obj:`None` is
            :func:`~gasgnn.genotype.data.op_vocabulary`. Every graph uses it, so op ids agree across the
            dataset. (default: :obj:`None`)
        require_latency (bool, optional): Skip run directories without a measured latency.
            (default: :obj:`True`)
        transform (callable, optional): PyG transform on access. (default: :obj:`None`)
        pre_transform (callable, optional): PyG transform before caching. (default: :obj:`None`)
        force_reload (bool, optional): Rebuild the cache. (default: :obj:`False`)
    """

    def __init__(
        self, root: str | None = None, runs: Iterable[str | os.PathLike] = (),
        validate: Iterable[str | os.PathLike] = (), vocab: Sequence[str] | None = None,
        require_latency: bool = True, transform: Callable | None = None, pre_transform: Callable | None = None,
        force_reload: bool = False,
    ) -> None:
        self.runs = [Path(p) for p in runs]
        self.validate_files = [Path(p) for p in validate]
        self.vocab = list(vocab) if vocab is not None else op_vocabulary()
        self.require_latency = require_latency
        self._cached = root is not None
        super().__init__(root, transform, pre_transform, force_reload=force_reload)
        if root is None:
            self.data, self.slices = self.collate(self._build())
        else:
            self.load(self.processed_paths[0])

    @property
    def raw_file_names(self) -> list[str]:
        return []

    @property
    def processed_file_names(self) -> list[str]:
        return ["genotypes.pt"]

    def _process(self) -> None:
        # Without a root, PyG would process into a folder named '???'; build in memory instead.
        if self._cached:
            super()._process()

    def process(self) -> None:
        self.save(self._build(), self.processed_paths[0])

    def _run_dirs(self) -> list[Path]:
        dirs: list[Path] = []
        for p in self.runs:
            if RunDir(p).has(RunDir.GENOTYPE):
                dirs.append(p)
            elif p.is_dir():
                dirs += sorted(f.parent for f in p.rglob(RunDir.GENOTYPE))
            else:
                raise GenotypeError(f"{p}: not a directory")
        return dirs

    def _build(self) -> list[Data]:
        items: list[Data] = []
        for d in self._run_dirs():
            s = samples_from_run(d, self.vocab)
            items += [x for x in s if not (self.require_latency and math.isnan(float(x.latency_ms)))]
        for f in self.validate_files:
            items += samples_from_validate(f, self.vocab)
        if not items:
            raise GenotypeError("GenotypeDataset: no samples (no run with a measured latency, no validate file)")
        if self.pre_transform is not None:
            items = [self.pre_transform(x) for x in items]
        return items

    @property
    def op_names(self) -> list[str]:
        """The op vocabulary every graph's ``edge_op`` indexes (as stored, even if the registry changed)."""
        return list(self[0].op_names) if len(self) else list(self.vocab)

    def genotype(self, idx: int) -> Genotype:
        """The :class:`~gasgnn.genotype.genotype.Genotype` of sample ``idx``."""
        return Genotype.from_data(self[idx])
