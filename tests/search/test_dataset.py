"""Genotype graphs batch with consistent op ids, round-trip through Batch.to_data_list, and form a
GenotypeDataset with measured latency and mIoU."""

import json
import math

import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from gasgnn import Genotype, GenotypeError, SearchSpace, random_genotype
from gasgnn.genotype import batch_vocabulary, darts_space, op_vocabulary
from gasgnn.search import GenotypeDataset
from gasgnn.space import preset_space

NASNET_NORMAL = ("Genotype(normal=[('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 0), "
                 "('sep_conv_3x3', 0), ('avg_pool_3x3', 1), ('skip_connect', 0), ('avg_pool_3x3', 0), "
                 "('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 1)], normal_concat=[2, 3, 4, 5, 6], "
                 "reduce=[('sep_conv_5x5', 1), ('sep_conv_7x7', 0), ('max_pool_3x3', 1), ('sep_conv_7x7', 0), "
                 "('avg_pool_3x3', 1), ('sep_conv_5x5', 0), ('skip_connect', 3), ('avg_pool_3x3', 2), "
                 "('sep_conv_3x3', 2), ('max_pool_3x3', 1)], reduce_concat=[4, 5, 6])")


def _genotypes() -> list[Genotype]:
    gen = torch.Generator().manual_seed(0)
    gas = random_genotype(SearchSpace(num_cells=4), gen)  # GAS ops (dil_conv_3x3_d8, conv_3x3, ...)
    darts = random_genotype(preset_space("darts", num_cells=5), gen)  # DARTS ops (avg pool, sep 5x5, ...)
    nasnet = Genotype.from_darts(NASNET_NORMAL, darts_space(NASNET_NORMAL, num_cells=3))  # multi-edges
    bare = Genotype(gas.cells[:3])  # no embedded space
    return [gas, darts, nasnet, bare]


def test_batch_round_trips_exactly_with_global_op_ids():
    gs = _genotypes()
    assert len({frozenset(g.ops()) for g in gs[:3]}) == 3  # different op sets
    batch = Batch.from_data_list([g.to_data() for g in gs])
    vocab = batch_vocabulary(batch)
    assert vocab == op_vocabulary()
    # Equal op names have equal ids across the batch: every id decodes to its genotype's op.
    ids = batch.edge_op.tolist()
    ops = [o for g in gs for o in g.ops()]
    assert [vocab[i] for i in ids] == ops
    by_name: dict[str, set[int]] = {}
    for i, o in zip(ids, ops):
        by_name.setdefault(o, set()).add(i)
    assert all(len(v) == 1 for v in by_name.values()) and len(by_name) >= 8
    # Per-node keys are not shifted by batching.
    assert batch.node_pos.tolist() == [p for g in gs for p in g.to_data().node_pos.tolist()]
    assert not [k for k in batch.keys() if k != "edge_index" and ("index" in k or "face" in k)]
    back = [Genotype.from_data(d) for d in batch.to_data_list()]
    assert back == gs
    assert back[3].space is None and back[0].space == gs[0].space


def test_dataloader_batches_with_and_without_space():
    gs = _genotypes()
    loader = DataLoader([g.to_data() for g in gs], batch_size=4)
    batch = next(iter(loader))
    assert batch.num_graphs == 4 and batch.space_json[3] == ""
    assert [Genotype.from_data(d) for d in batch.to_data_list()] == gs


def test_errors_for_batches():
    gs = _genotypes()
    batch = Batch.from_data_list([g.to_data() for g in gs[:2]])
    with pytest.raises(GenotypeError, match="to_data_list"):
        Genotype.from_data(batch)
    assert Genotype.from_data(Batch.from_data_list([gs[0].to_data()])) == gs[0]
    mixed = Batch.from_data_list([gs[0].to_data(), gs[0].to_data(vocab=sorted(op_vocabulary()))])
    with pytest.raises(GenotypeError, match="op vocabulary"):
        batch_vocabulary(mixed)
    with pytest.raises(GenotypeError, match="not in the vocabulary"):
        gs[1].to_data(vocab=["none", "skip_connect"])


def _write_run(d, genotype, **summary):
    d.mkdir(parents=True)
    genotype.save(d / "genotype.json")
    (d / "summary.json").write_text(json.dumps(summary))


def test_dataset_from_runs_and_validate_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an in-memory dataset must not write PyG's '???' folder here
    gs = _genotypes()
    _write_run(tmp_path / "runs" / "a", gs[0], measured_latency_ms=12.5, miou=0.61, predicted_latency_ms=11.0)
    _write_run(tmp_path / "runs" / "b", gs[1], measured_latency_ms=30.0, miou=None)
    _write_run(tmp_path / "runs" / "c", gs[2], measured_latency_ms=None)  # skipped: no measurement
    val = {"n": 2, "sizes": [{"input_size": [64, 96], "measured_ms": [3.0, 4.0], "predicted_ms": [2.5, 5.0]},
                             {"input_size": [128, 192], "measured_ms": [9.0, 15.0], "predicted_ms": [8.0, 16.0]}],
           "genotypes": [gs[1].to_dict(), gs[3].to_dict()]}
    (tmp_path / "val.json").write_text(json.dumps(val))
    for root in (None, str(tmp_path / "cache")):
        ds = GenotypeDataset(root, runs=[tmp_path / "runs"], validate=[tmp_path / "val.json"])
        assert len(ds) == 2 + 4
        assert ds.op_names == op_vocabulary()
        lat = [float(ds[i].latency_ms) for i in range(len(ds))]
        assert lat == [12.5, 30.0, 3.0, 4.0, 9.0, 15.0]
        assert float(ds[0].miou) == pytest.approx(0.61) and math.isnan(float(ds[1].miou))
        assert float(ds[3].table_latency_ms) == 5.0 and ds[4].input_size.tolist() == [[128, 192]]
        assert ds.genotype(0) == gs[0] and ds.genotype(3) == gs[3] and ds.genotype(5) == gs[3]
        batch = next(iter(DataLoader(ds, batch_size=6)))
        assert batch.latency_ms.shape == (6,) and batch.input_size.shape == (6, 2)
        assert [Genotype.from_data(d) for d in batch.to_data_list()] == [gs[0], gs[1], gs[1], gs[3], gs[1], gs[3]]
    assert not (tmp_path / "???").exists()
    # The cache is reused (a new source list needs force_reload).
    assert len(GenotypeDataset(str(tmp_path / "cache"))) == 6


def test_validate_output_without_genotypes_is_named(tmp_path):
    (tmp_path / "old.json").write_text(json.dumps({"sizes": [{"input_size": [8, 8], "measured_ms": [1.0]}]}))
    with pytest.raises(GenotypeError, match="no 'genotypes'"):
        GenotypeDataset(validate=[tmp_path / "old.json"])


def test_dataset_from_a_real_validate_run(tmp_path):
    from gasgnn.latency import LatencyTable, validate

    space = SearchSpace(num_cells=2, channels=4, input_size=(16, 16), reduction_cells=(1,))
    table = LatencyTable(repeats=1, warmup=0)
    res = validate(table, space, n=3, near_n=0, head="simple", head_channels=4, warmup=0, repeats=1, rounds=1,
                   progress=False)
    assert len(res["genotypes"]) == 3
    (tmp_path / "v.json").write_text(json.dumps(res))
    ds = GenotypeDataset(validate=[tmp_path / "v.json"])
    assert len(ds) == 3 and [float(d.latency_ms) for d in ds] == pytest.approx(res["sizes"][0]["measured_ms"])
    assert ds.genotype(2).space == space
