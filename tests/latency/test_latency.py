import json
import math

import pytest
import torch

import gasgnn.latency.table as lat_table
from gasgnn import random_genotype
from gasgnn.cli import main
from gasgnn.latency import (
    SIZE_KEYS,
    AdaptiveLatencyWeight,
    LatencyKey,
    LatencyTable,
    LatencyTableError,
    MissingEntriesError,
    expected_latency,
    latency_loss,
)


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    # Other processes share this machine's cores; one intra-op thread keeps the timed calls from stalling
    # on thread barriers, so the measuring tests stay fast. (Timing accuracy is checked by benchmarks.)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setattr("gasgnn.latency.measure.COLD_BYTES", 0)  # one copy per piece: fast tests
    yield
    torch.set_num_threads(threads)


def known_table(space, heads=("aspp",)):
    """A table with made-up, distinct numbers for every entry ``space`` needs (no measuring)."""
    table = LatencyTable()
    for i, key in enumerate(table.required_keys(space, heads=heads)):
        table[key] = 0.01 * (i + 1) + 0.001 * (i % 7)
    return table


def fast(monkeypatch):
    """Counts measurements and keeps them cheap (2 timed calls)."""
    calls = []
    real = lat_table.measure_key

    def counting(key, device="cpu", warmup=10, repeats=50, backend=None):
        calls.append(key)
        return real(key, device, warmup=1, repeats=2, backend=backend)

    monkeypatch.setattr(lat_table, "measure_key", counting)
    return calls


# --------------------------------------------------------------------------------------------------
# Expected latency


def test_expected_latency_matches_bruteforce(tiny_space):
    table = known_table(tiny_space)
    graph = tiny_space.arch_graph(torch.randn(tiny_space.num_arch_nodes, tiny_space.num_ops))
    total, per_cell = table.expected_latency(graph, space=tiny_space)
    assert total.shape == () and per_cell.shape == (tiny_space.num_cells,)

    w = torch.softmax(graph.x.double(), -1)
    ref_cell = torch.zeros(tiny_space.num_cells, dtype=torch.float64)
    for n in range(graph.num_nodes):
        for k, op in enumerate(tiny_space.ops):
            key = LatencyKey("op", (op, int(graph.channels[n]), int(graph.stride[n]), int(graph.height[n]),
                                    int(graph.width[n])), "float32", 1)
            ms = 0.0 if op == "none" else table[key]
            ref_cell[graph.cell[n]] += w[n, k] * ms
    # The fixed parts of the tiny space, written out by hand (stem to 8x8, reduction in cell 1).
    def K(kind, *p):
        return table[LatencyKey(kind, p, "float32", 1)]

    cells = [
        K("pre", "relu_conv_bn", 12, 4, 8, 8) * 2 + K("sum", 2, 4, 8, 8) * 2 + K("concat", 2, 4, 8, 8),
        K("pre", "relu_conv_bn", 12, 8, 8, 8) + K("pre", "relu_conv_bn", 8, 8, 8, 8)
        + K("sum", 2, 8, 4, 4) * 2 + K("concat", 2, 8, 4, 4),
        K("pre", "factorized_reduce", 8, 8, 8, 8) + K("pre", "relu_conv_bn", 16, 8, 4, 4)
        + K("sum", 2, 8, 4, 4) * 2 + K("concat", 2, 8, 4, 4),
    ]
    stem_head = (K("stem", 3, 12, 2, 32, 32) + K("head", "aspp", 16, 11, 128, 4, 4)
                 + K("upsample", 11, 4, 4, 32, 32))
    assert torch.allclose(per_cell.double(), ref_cell + torch.tensor(cells, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(total.double(), ref_cell.sum() + sum(cells) + stem_head, atol=1e-5)
    # The module-level function is the same computation.
    assert torch.equal(expected_latency(graph, table=table, space=tiny_space)[0], total)


def test_expected_latency_gradcheck(tiny_space):
    table = known_table(tiny_space)
    graph = tiny_space.arch_graph()
    alpha = torch.randn(tiny_space.num_arch_nodes, tiny_space.num_ops, dtype=torch.float64)
    alpha.requires_grad_()
    assert torch.autograd.gradcheck(lambda a: table.expected_latency(graph, a, space=tiny_space), (alpha,))
    total, _ = table.expected_latency(graph, alpha, space=tiny_space)
    total.backward()
    # Raising the logit of a costly op raises the expected latency; 'none' (free) lowers it.
    none = tiny_space.ops.index("none")
    assert torch.all(alpha.grad[:, none] < 0)


def test_expected_latency_of_one_hot_alpha_equals_predict(tiny_space):
    table = known_table(tiny_space)
    g = random_genotype(tiny_space, torch.Generator().manual_seed(3))
    graph = tiny_space.arch_graph()
    alpha = torch.full((tiny_space.num_arch_nodes, tiny_space.num_ops), -60.0, dtype=torch.float64)
    alpha[:, tiny_space.ops.index("none")] = 60.0  # edges not kept: 'none'
    edge_row = {e: i for i, e in enumerate(tiny_space.cell_edges())}
    for k, cell in enumerate(g.cells):
        for s, d, o in cell.edges:
            row = tiny_space.cell_slice(k).start + edge_row[(s, d)]
            alpha[row] = -60.0
            alpha[row, tiny_space.ops.index(o)] = 60.0
    total, _ = table.expected_latency(graph, alpha, space=tiny_space)
    assert math.isclose(float(total), table.predict(g), rel_tol=1e-9)
    parts = table.predict(g, breakdown=True)
    assert math.isclose(parts["total"], sum(v for k, v in parts.items() if k != "total"))


def test_scale_edges_weighs_kept_fraction(tiny_space):
    table = known_table(tiny_space)
    graph = tiny_space.arch_graph()
    plain = table.for_space(tiny_space, graph)
    scaled = table.for_space(tiny_space, graph, scale_edges=True)
    frac = graph.dst.double().clamp(max=2) / graph.dst.double()
    assert torch.allclose(scaled.rows, plain.rows * frac.unsqueeze(-1))
    assert table.for_space(tiny_space, graph) is plain  # compiled once per space


def test_table_not_covering_space_lists_missing(tiny_space, monkeypatch):
    table = known_table(tiny_space)
    other = tiny_space.replace(channels=6)
    graph = other.arch_graph()
    with pytest.raises(MissingEntriesError) as e:
        table.expected_latency(graph, space=other)
    assert "C=6" in str(e.value) and len(e.value.missing) > 0
    with pytest.raises(MissingEntriesError):
        table.ensure(other)
    calls = fast(monkeypatch)
    table.ensure(other, measure_missing=True)
    assert len(calls) == len(e.value.missing) or set(e.value.missing) <= set(calls)
    table.expected_latency(graph, space=other)  # covered now
    with pytest.raises(LatencyTableError, match="'channels' does not match"):
        table.expected_latency(tiny_space.arch_graph(), space=other)
    with pytest.raises(LatencyTableError, match="does not match the space"):
        table.expected_latency(tiny_space.replace(num_cells=4).arch_graph(), space=other)
    with pytest.raises(LatencyTableError, match="shape"):
        table.expected_latency(graph, torch.zeros(3, 8), space=other)


# --------------------------------------------------------------------------------------------------
# Measuring, files, merging


def test_measure_save_load_incremental(tiny_space, tmp_path, monkeypatch):
    calls = fast(monkeypatch)
    path = tmp_path / "t.json"
    table = LatencyTable.measure(tiny_space, path=path, progress=False)
    required = table.required_keys(tiny_space, heads=("aspp", "ppm"))
    assert len(calls) == len(required) == len(table) and set(required) == set(table._entries)
    assert all(ms > 0 for _, ms in table.items())
    meta = table.meta
    assert meta["device"] == "cpu" and meta["dtype"] == "float32"
    assert meta["threads"] == torch.get_num_threads()
    assert meta["input_sizes"] == [list(tiny_space.input_size)]

    loaded = LatencyTable.load(path)
    assert loaded.items() == table.items() and loaded.meta == table.meta
    calls.clear()
    again = LatencyTable.measure(tiny_space, path=path, progress=False)
    assert calls == [] and again.items() == table.items()
    assert loaded.measure_keys(required, progress=False) == []
    # A second input size measures only what the first did not cover.
    LatencyTable.measure(tiny_space, path=path, input_size=[(32, 32), (48, 64)], progress=False)
    assert calls and not set(calls) & set(table._entries)
    assert LatencyKey("stem", (3, 12, 2, 48, 64), "float32", 1) in calls
    assert LatencyTable.load(path).meta["input_sizes"] == [[32, 32], [48, 64]]
    with pytest.raises(LatencyTableError, match="batch"):
        LatencyTable.measure(tiny_space, path=path, batch=2, progress=False)


def test_measure_resumes_after_kill(tiny_space, tmp_path, monkeypatch):
    path = tmp_path / "t.json"
    calls = fast(monkeypatch)
    real = lat_table.measure_key

    def dies_after_five(key, *a, **kw):
        if len(calls) == 5:
            raise KeyboardInterrupt  # a killed run
        return real(key, *a, **kw)

    monkeypatch.setattr(lat_table, "measure_key", dies_after_five)
    with pytest.raises(KeyboardInterrupt):
        LatencyTable.measure(tiny_space, path=path, progress=False)
    partial = LatencyTable.load(path)  # the file is intact, with the finished entries
    assert len(partial) == 5
    monkeypatch.setattr(lat_table, "measure_key", real)
    calls.clear()
    full = LatencyTable.measure(tiny_space, path=path, progress=False)
    assert len(calls) == len(full) - 5 and not set(calls) & set(partial._entries)
    for k, ms in partial.items():
        assert full[k] == ms


def test_merge(tiny_space):
    table = known_table(tiny_space)
    items = table.items()
    a = LatencyTable(dict(items[: len(items) // 2 + 2]), meta=table.meta)
    b = LatencyTable(dict(items[len(items) // 2 :]), meta=table.meta)
    k0 = items[len(items) // 2][0]
    b[k0] = 99.0
    merged = a.merge(b)
    assert merged.items() == [(k, ms) for k, ms in items]  # 'self' wins where both have an entry
    assert a.merge(b, prefer="other")[k0] == 99.0
    other_device = LatencyTable(meta={**table.meta, "device_name": "cuda: H100"})
    with pytest.raises(LatencyTableError, match="device_name"):
        a.merge(other_device)
    assert len(a.merge(other_device, force=True)) == len(a)


def write(tmp_path, obj):
    p = tmp_path / "bad.json"
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return p


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda o: o.update(version=99), "version"),
        (lambda o: o.update(format="other"), "format"),
        (lambda o: o.pop("entries"), "entries"),
        (lambda o: o["meta"].pop("device"), "meta.device"),
        (lambda o: o["meta"].update(batch="one"), "meta.batch"),
        (lambda o: o["entries"][1].update(ms=-0.5), "entries[1].ms"),
        (lambda o: o["entries"][2].update(ms="fast"), "entries[2].ms"),
        (lambda o: o["entries"][0].pop("C", None) or o["entries"][0].pop("C_in", None), "entries[0]"),
        (lambda o: o["entries"][3].update(kind="gpu_magic"), "entries[3].kind"),
        (lambda o: o["entries"].append(dict(o["entries"][0])), "duplicate"),
    ],
)
def test_load_rejects_bad_files(tiny_space, tmp_path, mutate, field):
    obj = known_table(tiny_space).to_dict()
    mutate(obj)
    p = write(tmp_path, obj)
    with pytest.raises(LatencyTableError) as e:
        LatencyTable.load(p)
    assert str(p) in str(e.value) and field in str(e.value)


def test_load_rejects_corrupt_json(tmp_path):
    p = write(tmp_path, '{"format": "gasgnn-latency-table", "entr')
    with pytest.raises(LatencyTableError, match="bad.json.*not valid JSON"):
        LatencyTable.load(p)
    with pytest.raises(FileNotFoundError):
        LatencyTable.load(tmp_path / "missing.json")


def test_setting_bad_values_raises():
    table = LatencyTable()
    key = LatencyKey("sum", (2, 4, 8, 8), "float32", 1)
    with pytest.raises(LatencyTableError):
        table[key] = float("nan")
    with pytest.raises(LatencyTableError):
        table[LatencyKey("sum", (2,), "float32", 1)] = 1.0
    assert table[LatencyKey("op", ("none", 4, 1, 8, 8), "float32", 1)] == 0.0


# --------------------------------------------------------------------------------------------------
# Loss forms and the adaptive weight


def test_latency_loss_forms():
    t = torch.tensor(20.0, requires_grad=True)
    assert latency_loss(t).item() == 20.0
    assert latency_loss(t, "linear", target_ms=10).item() == 2.0
    assert math.isclose(latency_loss(t, "log").item(), math.log(20.0), rel_tol=1e-6)
    assert latency_loss(t, "target", target_ms=25).item() == 0.0
    assert math.isclose(latency_loss(t, "target", target_fps=100).item(), 1.0)  # 20 ms vs 10 ms
    latency_loss(t, "target", target_ms=25).backward()
    assert t.grad.item() == 0.0  # no pressure below the target
    for bad in (dict(form="cubic"), dict(form="target"), dict(target_ms=1, target_fps=1), dict(target_fps=0)):
        with pytest.raises(ValueError):
            latency_loss(t, **bad)


def test_adaptive_weight_window():
    w = AdaptiveLatencyWeight(fps_window=(50, 100), factor=2.0, init=1.0, max_weight=4.0)
    assert w.step(40.0) == 2.0  # 25 FPS: too slow, more latency pressure
    assert w.step(40.0) == 4.0 and w.step(40.0) == 4.0  # capped
    assert w.step(15.0) == 4.0  # 66 FPS: inside the window
    assert w.step(5.0) == 2.0  # 200 FPS: faster than needed, less pressure
    w2 = AdaptiveLatencyWeight(fps_window=(1, 2))
    w2.load_state_dict(w.state_dict())
    assert w2.weight == 2.0 and w2.fps_window == (50.0, 100.0)
    with pytest.raises(ValueError):
        AdaptiveLatencyWeight(fps_window=(100, 50))


# --------------------------------------------------------------------------------------------------
# CLI


def tiny_args(tiny_space):
    s = tiny_space
    return ["--num-cells", str(s.num_cells), "--num-nodes", str(s.num_nodes), "--reduction-cells",
            *map(str, s.reduction_cells), "--channels", str(s.channels),
            "--input-size", *map(str, s.input_size)]


def test_cli_measure_show_validate(tiny_space, tmp_path, capsys):
    out = tmp_path / "t.json"
    args = tiny_args(tiny_space)
    assert main(["latency", "measure", *args, "--out", str(out), "--repeats", "2", "--warmup", "1",
                 "--no-progress", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["measured"] == first["entries"] > 0
    assert main(["latency", "measure", *args, "--out", str(out), "--no-progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["measured"] == 0  # resumed, nothing missing

    assert main(["latency", "show", str(out), "--kind", "stem"]) == 0
    text = capsys.readouterr().out
    assert "device_name" in text and "C_out=12" in text
    assert main(["latency", "show", str(out), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["entries"]) == first["entries"]

    assert main(["latency", "validate", *args, "--table", str(out), "--n", "4", "--near-n", "2",
                 "--sizes", "32", "32", "40", "56", "--repeats", "2", "--warmup", "1", "--rounds", "1",
                 "--no-progress", "--json"]) in (0, 3)  # 3: noise-dominated (tiny nets, shared machine)
    res = json.loads(capsys.readouterr().out)
    assert [r["input_size"] for r in res["sizes"]] == [[32, 32], [40, 56]]
    assert res["range_index"] == [0, 1, 2, 3] and res["band_index"] == [4, 5] and res["backend"] == "torch"
    for r in res["sizes"]:
        assert len(r["predicted_ms"]) == len(r["measured_ms"]) == len(r["retest_ms"]) == 6 and r["mape"] >= 0
        assert set(SIZE_KEYS) <= set(r) and r["verdict"]["status"] in ("pass", "fail", "not_a_result")
        assert -1 <= r["spearman"] <= 1 or math.isnan(r["spearman"])
    assert [40, 56] in LatencyTable.load(out).meta["input_sizes"]  # missing entries measured and saved

    assert main(["latency", "show", str(tmp_path / "nope.json")]) == 2
    out.write_text("{}")
    assert main(["latency", "show", str(out)]) == 2
    assert "missing field" in capsys.readouterr().err


def test_runner_cycles_cold_copies():
    from gasgnn.latency import piece_runner

    key = LatencyKey("op", ("conv_3x3", 4, 1, 8, 8), "float32", 1)
    with torch.inference_mode():
        hot = piece_runner(key, torch.device("cpu"), torch.float32, cold_bytes=0)
        assert torch.equal(hot(), hot())  # one module, one input
        cold = piece_runner(key, torch.device("cpu"), torch.float32, cold_bytes=1 << 16)
        outs = [cold() for _ in range(70)]
    assert not torch.equal(outs[0], outs[1])  # independent copies, taken in turn ...
    period = next(i for i in range(1, 70) if torch.equal(outs[0], outs[i]))
    assert 2 <= period <= 64 and torch.equal(outs[1], outs[period + 1])  # ... and cycled


def test_exclude_none_renormalises_over_real_ops(tiny_space):
    table = known_table(tiny_space)
    graph = tiny_space.arch_graph()
    alpha = torch.randn(tiny_space.num_arch_nodes, tiny_space.num_ops, dtype=torch.float64)
    none = tiny_space.ops.index("none")
    masked = alpha.clone()
    masked[:, none] = -1e9  # softmax weight ~0 on 'none': the same expectation by hand
    ref, _ = table.expected_latency(graph, masked, space=tiny_space)
    got, _ = table.expected_latency(graph, alpha, space=tiny_space, exclude_none=True)
    assert torch.allclose(got, ref)
    a = alpha.clone().requires_grad_(True)
    table.expected_latency(graph, a, space=tiny_space, exclude_none=True)[0].backward()
    assert a.grad[:, none].abs().sum() == 0 and a.grad.isfinite().all()


def test_calibrate_defaults_leave_validate_defaults_alone():
    """calibrate takes validate's options with smaller defaults; validate keeps its own."""
    from gasgnn.cli import build_parser

    p = build_parser()
    v = p.parse_args(["latency", "validate"])
    c = p.parse_args(["latency", "calibrate"])
    assert (v.n, v.near_n) == (20, 10) and (c.n, c.near_n) == (10, 4)
