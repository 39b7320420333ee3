import csv
import json
import math

import pytest
import torch

from gasgnn import CellGenotype, Genotype, random_genotype
from gasgnn.runner import RunDir, load_run
from gasgnn.viz import analyze, cell_distance, format_analysis, pareto_front, run_row, stages

# Five hand-made cells (2 intermediate nodes, 4 kept edges each); reductions at cells 1 and 3.
A = ((0, 2, "skip_connect"), (1, 2, "max_pool_3x3"), (0, 3, "dil_conv_3x3_d8"), (2, 3, "skip_connect"))
B = ((0, 2, "dil_conv_3x3_d4"), (1, 2, "conv_3x3"), (1, 3, "dil_conv_3x3_d8"), (2, 3, "max_pool_3x3"))
C = ((0, 2, "dil_conv_3x3_d4"), (1, 2, "conv_3x3"), (1, 3, "dil_conv_3x3"), (2, 3, "skip_connect"))
D = ((0, 2, "skip_connect"), (1, 2, "max_pool_3x3"), (1, 3, "dil_conv_3x3_d8"), (2, 3, "skip_connect"))


@pytest.fixture
def hand_genotype():
    cells = [
        CellGenotype(A, False, 4, 2), CellGenotype(B, True, 8, 2), CellGenotype(C, False, 8, 2),
        CellGenotype(B, True, 16, 2), CellGenotype(D, False, 16, 2),
    ]
    return Genotype(tuple(cells))


def test_counts_on_hand_made_genotype(hand_genotype):
    s = analyze(hand_genotype)
    assert s["num_cells"] == 5 and s["num_edges"] == 20
    assert s["reduction_cells"] == [1, 3]
    assert s["light_ops_per_cell"] == [3, 1, 1, 1, 3]
    assert s["light_ops"] == 9
    assert s["large_rf_per_cell"] == [1, 2, 1, 2, 1]
    assert s["large_rf_ops"] == 7
    assert s["last_cells"] == [1, 2, 3, 4]
    assert s["large_rf_last4"] == 6  # cell 0's dil8 is not in the last four cells
    assert s["op_counts"] == {
        "conv_3x3": 3, "dil_conv_3x3": 1, "dil_conv_3x3_d4": 3, "dil_conv_3x3_d8": 4,
        "max_pool_3x3": 4, "skip_connect": 5,
    }
    assert [st["cells"] for st in s["stages"]] == [[0], [1, 2], [3, 4]]
    assert [st["light_ops"] for st in s["stages"]] == [3, 2, 4]
    assert [st["large_rf_ops"] for st in s["stages"]] == [1, 3, 3]
    assert s["stages"][0]["op_counts"] == {"dil_conv_3x3_d8": 1, "max_pool_3x3": 1, "skip_connect": 2}
    assert s["params"] is None and s["predicted_latency_ms"] is None
    json.dumps(s)  # JSON-serialisable


def test_diversity_on_hand_made_genotype(hand_genotype):
    s = analyze(hand_genotype)
    # Neighbours: A-B share nothing; B-C share 2 of 6; C-B the same; B-D share 1 of 7.
    assert s["neighbour_distances"] == pytest.approx([1.0, 2 / 3, 2 / 3, 6 / 7])
    assert s["diversity_neighbour"] == pytest.approx((1 + 4 / 3 + 6 / 7) / 4)
    m = s["distance_matrix"]
    assert m[1][3] == 0.0  # cells 1 and 3 are the same cell
    assert m[0][4] == pytest.approx(1 - 3 / 5)
    # The ten pairs by hand: A-B 1, A-C 6/7, A-B 1, A-D 2/5, B-C 2/3, B-B 0, B-D 6/7, C-B 2/3,
    # C-D 6/7, B-D 6/7.
    assert s["diversity_all"] == pytest.approx((2 + 0.4 + 4 / 3 + 4 * 6 / 7) / 10)


def test_cell_distance_properties():
    a, b = CellGenotype(A, False, 4, 2), CellGenotype(B, False, 4, 2)
    assert cell_distance(a, a) == 0.0
    assert cell_distance(a, b) == cell_distance(b, a) == 1.0
    # The op matters: same (src, dst) with another op is a different edge.
    c = CellGenotype(((0, 2, "conv_3x3"),) + A[1:], False, 4, 2)
    assert cell_distance(a, c) == pytest.approx(1 - 3 / 5)


def test_stages_with_leading_reduction():
    cells = [CellGenotype(B, True, 8, 2), CellGenotype(C, False, 8, 2), CellGenotype(B, True, 16, 2)]
    assert stages(Genotype(tuple(cells))) == [[0, 1], [2]]


class _Table:
    def predict(self, genotype):
        return torch.tensor(0.5 * len(genotype.ops()))

    def predict_cells(self, genotype):
        return [0.5 * len(c.edges) for c in genotype.cells]


def test_latency_table_is_duck_typed(hand_genotype):
    s = analyze(hand_genotype, table=_Table())
    assert s["predicted_latency_ms"] == 10.0
    assert s["predicted_cell_latency_ms"] == [2.0] * 5
    with pytest.raises(TypeError, match="predict"):
        analyze(hand_genotype, table=object())


class _KeyTable:
    """Mimics LatencyTable: predict() plus (key, cell) pairs with cell -1 for the stem and head."""

    def predict(self, genotype):
        return 1.0 + sum(len(c.edges) for c in genotype.cells)

    def genotype_keys(self, genotype):
        yield "stem", -1
        for k, c in enumerate(genotype.cells):
            for e in c.edges:
                yield e, k
        yield "head", -1

    def __getitem__(self, key):
        return 0.5 if key in ("stem", "head") else 1.0


def test_per_cell_latency_from_genotype_keys(hand_genotype):
    s = analyze(hand_genotype, table=_KeyTable())
    assert s["predicted_latency_ms"] == 21.0
    assert s["predicted_cell_latency_ms"] == [4.0] * 5


def test_params(tiny_space):
    from gasgnn import GASNet

    g = random_genotype(tiny_space, torch.Generator().manual_seed(0))
    n = analyze(g, params=True)["params"]
    assert n == sum(p.numel() for p in GASNet(g).parameters()) and n > 0


def test_format_analysis(hand_genotype):
    text = format_analysis(analyze(hand_genotype, table=_Table()))
    assert "light-weight ops" in text and ": 9;" in text
    assert "in the last 4 cells (1-4): 6" in text
    assert "predicted latency: 10.000 ms" in text


def test_pareto_front():
    pts = [(10, 0.6), (8, 0.5), (12, 0.7), (9, 0.4), (11, 0.6), (8, 0.55)]
    assert pareto_front(pts) == [5, 0, 2]
    assert pareto_front([]) == []


def _write_run(d, g, epochs=3, metrics=True, alpha=True, extra=True):
    d.mkdir(parents=True, exist_ok=True)
    g.save(d / "genotype.json")
    if extra:
        (d / "config.json").write_text(json.dumps({"guide": "ggm", "latency_weight": 0.02}))
        (d / "summary.json").write_text(json.dumps({
            "name": "run-a", "guide": "ggm", "latency_weight": 0.02, "predicted_latency_ms": 4.5,
            "miou": 0.61, "measured_latency_ms": None,
        }))
    if metrics:
        with open(d / "metrics.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["epoch", "train_loss", "val_loss", "val_miou", "expected_latency_ms", "expected_fps",
                        "alpha_entropy", "lr"])
            for e in range(epochs):
                w.writerow([e, 1.0 / (e + 1), 1.1 / (e + 1), 0.1 * e, 5 - e, 200 + e, 1 - 0.1 * e, ""])
    if alpha:
        sp = g.space
        torch.save(torch.randn(epochs, sp.num_arch_nodes, sp.num_ops), d / "alpha_history.pt")


def test_load_run_full_and_partial(tmp_path, tiny_space):
    g = random_genotype(tiny_space, torch.Generator().manual_seed(1))
    _write_run(tmp_path / "full", g)
    r = load_run(tmp_path / "full")
    assert r.genotype == g and r.name == "run-a" and r.guide == "ggm"
    assert r.metrics["epoch"] == [0.0, 1.0, 2.0] and r.metrics["lr"] == [None] * 3
    assert tuple(r.alpha_history.shape) == (3, tiny_space.num_arch_nodes, tiny_space.num_ops)
    assert r.notes == []
    row = run_row(r)
    assert row["predicted_latency_ms"] == 4.5 and row["miou"] == 0.61 and row["latency_weight"] == 0.02
    assert row["light_ops"] == analyze(g)["light_ops"]

    _write_run(tmp_path / "bare", g, metrics=False, alpha=False, extra=False)
    r = load_run(tmp_path / "bare")
    assert r.metrics is None and r.alpha_history is None and r.name == "bare" and r.guide is None
    assert len(r.notes) == 4
    assert run_row(r)["predicted_latency_ms"] is None
    r = load_run(tmp_path / "bare" / "genotype.json")
    assert not r.is_dir and r.name == "genotype"


def test_load_run_errors(tmp_path, tiny_space):
    g = random_genotype(tiny_space, torch.Generator().manual_seed(1))
    with pytest.raises(FileNotFoundError, match="run not found"):
        load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no genotype.json"):
        load_run(tmp_path / "empty")
    _write_run(tmp_path / "r", g)
    torch.save(torch.randn(2, 5, 3), tmp_path / "r" / "alpha_history.pt")
    with pytest.raises(ValueError, match="alpha_history.pt: shape"):
        load_run(tmp_path / "r")
    (tmp_path / "r" / "metrics.csv").write_text("epoch,val_miou\n0,0.5\n1,abc\n")
    with pytest.raises(ValueError, match="line 3, column 'val_miou'"):
        RunDir(tmp_path / "r").read_metrics()
    (tmp_path / "r" / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="config.json: expected a JSON object"):
        load_run(tmp_path / "r")


def test_analyze_rejects_non_genotype():
    with pytest.raises(TypeError, match="Genotype"):
        analyze({"cells": []})
    assert math.isfinite(analyze(Genotype((CellGenotype(A, False, 4, 2),)))["diversity_all"])
