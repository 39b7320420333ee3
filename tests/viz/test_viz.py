import itertools
import json

import numpy as np
import pytest
import torch
from matplotlib.patches import FancyArrowPatch

from gasgnn import CellGenotype, Genotype, SearchSpace, random_genotype
from gasgnn.cli import main
from gasgnn.space import OPS
from gasgnn.viz import (
    LARGE_RF_COLOR,
    REDUCTION_COLOR,
    analyze,
    draw_alpha_history,
    draw_cell,
    draw_cell_latency,
    draw_comparison,
    draw_metrics,
    draw_network,
    draw_pareto,
    op_style,
    save_figure,
    short_label,
)

MAGIC = {"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<?xml"}


def label_overlaps(fig):
    """Pairs of overlapping text boxes (edge labels with their box, node labels) inside each cell panel,
    plus boxes sticking out of their panel, measured with the Agg renderer after a full draw."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    bad, panels = [], 0
    for ax in fig.axes:
        if not (ax.get_gid() or "").startswith("cell-"):
            continue
        panels += 1
        boxes = []
        for t in ax.texts:
            if t.get_gid() == "edge-label":
                boxes.append((t.get_text(), t.get_bbox_patch().get_window_extent(renderer)))
            elif t.get_gid() == "node-label":
                boxes.append((t.get_text(), t.get_window_extent(renderer)))
        frame = ax.get_window_extent(renderer)
        for (na, a), (nb, b) in itertools.combinations(boxes, 2):
            if a.overlaps(b):
                bad.append((ax.get_gid(), na, nb))
        for n, a in boxes:
            if a.x0 < frame.x0 or a.x1 > frame.x1 or a.y0 < frame.y0 or a.y1 > frame.y1:
                bad.append((ax.get_gid(), n, "frame"))
    return bad, panels


def test_overlap_check_detects_overlaps():
    g = random_genotype(SearchSpace(num_cells=2, reduction_cells=()), torch.Generator().manual_seed(0))
    fig = draw_network(g, dpi=60)
    assert label_overlaps(fig) == ([], 2)
    labels = [t for t in fig.axes[0].texts if t.get_gid() == "edge-label"]
    labels[1].set_position(labels[0].get_position())  # force a collision
    bad, _ = label_overlaps(fig)
    assert bad and bad[0][0] == "cell-0"


def test_network_labels_do_not_overlap_with_12_cells():
    g = random_genotype(SearchSpace(), torch.Generator().manual_seed(0))
    fig = draw_network(g)  # the default resolution, as saved
    bad, panels = label_overlaps(fig)
    assert panels == 12
    assert bad == []
    n_labels = sum(t.get_gid() == "edge-label" for ax in fig.axes for t in ax.texts)
    assert n_labels == analyze(g)["num_edges"]


def test_dense_cells_labels_do_not_overlap():
    # Three inputs per node (11 labelled edges per cell) in a smaller figure.
    g = random_genotype(SearchSpace(), torch.Generator().manual_seed(3), k=3)
    bad, panels = label_overlaps(draw_network(g, dpi=80))
    assert panels == 12 and bad == []


def test_edge_styles_follow_registry():
    g = random_genotype(SearchSpace(), torch.Generator().manual_seed(1))
    fig = draw_network(g, dpi=50)
    arrows = [p for ax in fig.axes for p in ax.patches if isinstance(p, FancyArrowPatch)]
    green = [p for p in arrows if p.get_edgecolor()[:3] == pytest.approx((26 / 255, 152 / 255, 80 / 255))]
    dashed = [p for p in arrows if p.get_linestyle() not in ("-", "solid")]
    s = analyze(g)
    assert len(green) == s["large_rf_ops"]
    assert len(dashed) == s["light_ops"]
    # Reduction cells get the reduction frame.
    for ax in fig.axes:
        if ax.get_gid() in ("cell-4", "cell-8"):
            assert ax.spines["top"].get_edgecolor()[:3] == pytest.approx((230 / 255, 97 / 255, 1 / 255))
            assert "reduction" in ax.get_title()
    assert op_style("dil_conv_3x3_d8")["color"] == LARGE_RF_COLOR
    assert op_style("skip_connect")["linestyle"] != "-" and op_style("conv_3x3")["linestyle"] == "-"
    assert short_label("sep_conv_3x3") == "sep3" and short_label("dil_conv_3x3_d4") == "dil4"
    assert REDUCTION_COLOR.startswith("#")
    assert all(short_label(o) for o in OPS)


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_drawings_write_each_format(tmp_path, tiny_space, fmt):
    g = random_genotype(tiny_space, torch.Generator().manual_seed(0))
    draw_cell(g, 1, tmp_path / f"cell.{fmt}", dpi=40)
    draw_network(g, tmp_path / f"net.{fmt}", title="tiny", dpi=40)
    for name in ("cell", "net"):
        assert (tmp_path / f"{name}.{fmt}").read_bytes()[:5].startswith(MAGIC[fmt])
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"cell.{fmt}", f"net.{fmt}"]  # no temp files left


def test_save_errors_and_cell_index(tmp_path, tiny_space):
    g = random_genotype(tiny_space, torch.Generator().manual_seed(0))
    fig = draw_cell(g, -1, dpi=40)
    assert fig.axes[0].get_gid() == "cell-2"
    with pytest.raises(ValueError, match="unsupported figure format"):
        save_figure(fig, tmp_path / "x.jpg")
    with pytest.raises(IndexError, match="out of range"):
        draw_cell(g, 3)
    with pytest.raises(ValueError, match="ncols"):
        draw_network(g, ncols=0)


def test_alpha_history(tmp_path, tiny_space):
    h = torch.randn(4, tiny_space.num_arch_nodes, tiny_space.num_ops)
    fig = draw_alpha_history(h, tiny_space, tmp_path / "a.png", dpi=40)
    assert (tmp_path / "a.png").is_file()
    heat = [ax for ax in fig.axes if ax.images]
    assert len(heat) == tiny_space.num_cells
    # The first cell's heat map is softmax(alpha) of its rows at the last epoch.
    want = torch.softmax(h[-1, tiny_space.cell_slice(0)], -1).numpy()
    np.testing.assert_allclose(np.asarray(heat[0].images[0].get_array()), want, rtol=1e-5)
    with pytest.raises(ValueError, match="expected"):
        draw_alpha_history(h[:, :-1], tiny_space)


def test_pareto_latency_metrics_comparison(tmp_path):
    pts = [{"name": "a", "latency_ms": 10, "miou": 0.6, "group": "ggm"},
           {"name": "b", "latency_ms": 8, "miou": 0.5, "group": "fc"},
           {"name": "c", "latency_ms": 12, "miou": 0.55, "group": "random"},
           {"name": "d", "latency_ms": None, "miou": 0.7}]
    fig = draw_pareto(pts, tmp_path / "p.svg")
    ax = fig.axes[0]
    front = [ln for ln in ax.lines if ln.get_label() == "Pareto front"]
    assert len(front) == 1 and sorted(front[0].get_xdata()[:2]) == [8, 10]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 3
    with pytest.raises(ValueError, match="name"):
        draw_pareto([{"latency_ms": 1, "miou": 1}])

    fig = draw_cell_latency(torch.tensor([1.0, 2.0, 0.5]), tmp_path / "l.png", reduction_cells=[1])
    assert len(fig.axes[0].patches) == 3 and "3.50 ms in total" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="empty"):
        draw_cell_latency([])

    m = {"epoch": [0, 1], "train_loss": [1.0, 0.5], "val_miou": [None, 0.3]}
    fig = draw_metrics(m, tmp_path / "m.png")
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="epoch"):
        draw_metrics({"loss": [1]})

    rows = [{"name": "x", "guide": "ggm", "light_ops": 3, "large_rf_last4": 2, "diversity_neighbour": 0.5,
             "predicted_latency_ms": 4.0, "measured_latency_ms": None, "miou": 0.6}]
    fig = draw_comparison(rows, tmp_path / "c.pdf")
    assert (tmp_path / "c.pdf").read_bytes().startswith(b"%PDF") and len(fig.axes) == 4


# ------------------------------------------------------------------------------------------------
# Command line


def _run_dir(d, g, alpha=True):
    d.mkdir(parents=True)
    g.save(d / "genotype.json")
    (d / "config.json").write_text(json.dumps({"guide": d.name, "latency_weight": 0.01}))
    (d / "summary.json").write_text(json.dumps({"name": d.name, "guide": d.name, "latency_weight": 0.01,
                                                "predicted_latency_ms": 3.0, "miou": 0.5,
                                                "measured_latency_ms": None}))
    (d / "metrics.csv").write_text(
        "epoch,train_loss,val_loss,val_miou,expected_latency_ms,expected_fps,alpha_entropy\n"
        "0,1.0,1.1,0.2,5.0,200,0.99\n1,0.8,0.9,0.3,4.0,250,0.9\n"
    )
    if alpha:
        sp = g.space
        torch.save(torch.randn(2, sp.num_arch_nodes, sp.num_ops), d / "alpha_history.pt")


def test_cli_viz_run_dir(tmp_path, tiny_space, capsys):
    g = random_genotype(tiny_space, torch.Generator().manual_seed(0))
    _run_dir(tmp_path / "ggm", g)
    assert main(["viz", str(tmp_path / "ggm"), "--json", "--cells", "--dpi", "40"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["analysis"] == json.loads(json.dumps(analyze(g)))
    names = sorted(p.split("/")[-1] for p in out["figures"])
    assert names == ["alpha_history.png", "cell_00.png", "cell_01.png", "cell_02.png", "metrics.png",
                     "network.png"]
    assert all((tmp_path / "ggm" / "figures" / n).is_file() for n in names)
    assert any("per-cell latency skipped" in n for n in out["notes"])

    # Missing optional files: figures are skipped with a message, the rest still works.
    (tmp_path / "ggm" / "alpha_history.pt").unlink()
    (tmp_path / "ggm" / "metrics.csv").unlink()
    assert main(["viz", str(tmp_path / "ggm"), "--out", str(tmp_path / "f"), "--format", "svg"]) == 0
    cap = capsys.readouterr()
    assert "light-weight ops" in cap.out and "alpha_history.pt missing" in cap.err
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["network.svg"]


def test_cli_viz_draws_guide_diagnostics(tmp_path, tiny_space, monkeypatch):
    import gasgnn.viz.charts as charts

    g = random_genotype(tiny_space, torch.Generator().manual_seed(0))
    _run_dir(tmp_path / "run", g, alpha=False)
    (tmp_path / "run" / "metrics.csv").write_text(
        "epoch,train_loss,alpha_entropy,guide_attention_entropy,guide_update_ratio,guide_distinct_sources\n"
        "1,1.0,2.07,0.9,0.1,13.5\n2,0.8,2.06,0.7,0.2,11.0\n")
    titles = []
    draw = charts.draw_metrics

    def spy(*a, **k):
        fig = draw(*a, **k)
        titles.extend(ax.get_title() for ax in fig.axes)
        return fig

    monkeypatch.setattr(charts, "draw_metrics", spy)
    assert main(["viz", str(tmp_path / "run"), "--dpi", "40"]) == 0
    assert {"guide diagnostics", "guide: distinct sources per cell"} <= set(titles)
    assert (tmp_path / "run" / "figures" / "metrics.png").is_file()


class _Table:
    def predict(self, genotype):
        return 2.0 * len(genotype.cells)

    def predict_cells(self, genotype):
        return [2.0] * len(genotype.cells)


def test_draw_run_with_table(tmp_path, tiny_space):
    from gasgnn.viz import draw_run

    _run_dir(tmp_path / "r", random_genotype(tiny_space, torch.Generator().manual_seed(0)), alpha=False)
    written, notes, stats = draw_run(tmp_path / "r", fmt="svg", table=_Table(), dpi=40)
    assert sorted(p.name for p in written) == ["cell_latency.svg", "metrics.svg", "network.svg"]
    assert stats["predicted_latency_ms"] == 6.0
    assert any("alpha_history.pt missing" in n for n in notes)


def test_cli_viz_genotype_file_and_errors(tmp_path, tiny_space, capsys):
    g = random_genotype(tiny_space, torch.Generator().manual_seed(0))
    g.save(tmp_path / "g.json")
    assert main(["viz", str(tmp_path / "g.json")]) == 0
    assert (tmp_path / "figures" / "network.png").is_file()
    capsys.readouterr()
    assert main(["viz", str(tmp_path / "missing")]) == 2
    assert "run not found" in capsys.readouterr().err
    bad = Genotype((CellGenotype(((0, 2, "conv_3x3"), (1, 3, "skip_connect")), False, 4, 2),))
    (tmp_path / "b.json").write_text(bad.to_json().replace("skip_connect", "warp_op"))
    assert main(["viz", str(tmp_path / "b.json")]) == 2
    assert "warp_op" in capsys.readouterr().err


def test_cli_compare(tmp_path, tiny_space, capsys):
    for i, name in enumerate(["ggm", "fc", "random"]):
        _run_dir(tmp_path / name, random_genotype(tiny_space, torch.Generator().manual_seed(i)), alpha=False)
    runs = [str(tmp_path / n) for n in ("ggm", "fc", "random")]
    assert main(["compare", *runs, "--out", str(tmp_path / "cmp"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in out["runs"]] == ["ggm", "fc", "random"]
    fc = Genotype.load(tmp_path / "fc" / "genotype.json")
    assert out["runs"][1]["light_ops"] == analyze(fc)["light_ops"]
    assert (tmp_path / "cmp" / "compare.png").is_file()
    assert main(["compare", *runs, "--out", str(tmp_path / "cmp")]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split()[:3] == ["name", "guide", "light"]
    assert "random" in text and "0.500" in text
