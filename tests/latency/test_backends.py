"""Latency backends: every backend measures a small table and validates on tiny sizes, the backend is
recorded in the table, and a table is never measured or validated on another backend than its own."""

import json

import pytest
import torch
from torch import nn

from gasgnn import SearchSpace
from gasgnn.cli import main
from gasgnn.latency import (
    LATENCY_BACKENDS,
    SIZE_KEYS,
    BackendUnavailable,
    LatencyBackend,
    LatencyKey,
    LatencyTable,
    LatencyTableError,
    check_backend,
    load_or_measure_table,
    make_backend,
    measure_key,
    validate,
)
from gasgnn.latency import measure as measure_mod

SPACE = SearchSpace(num_cells=3, num_nodes=2, reduction_cells=(1,), channels=4, input_size=(32, 32), num_classes=9)
CONV = LatencyKey("op", ("conv_3x3", 4, 1, 8, 8), "float32", 1)


@pytest.fixture(autouse=True)
def _one_copy(monkeypatch):
    monkeypatch.setattr("gasgnn.latency.measure.COLD_BYTES", 0)  # one copy per piece: fast tests


def _measure_and_validate(backend, n=3, near_n=2, space=SPACE, sizes=((32, 32), (24, 40))):
    table = LatencyTable.measure(space, repeats=2, warmup=1, progress=False, heads=("aspp",), backend=backend)
    assert table.backend == backend and len(table) > 0 and all(ms > 0 for _, ms in table.items())
    res = validate(table, space, sizes=list(sizes), n=n, near_n=near_n, repeats=2, warmup=1, rounds=1,
                   progress=False)
    assert res["backend"] == backend and [r["input_size"] for r in res["sizes"]] == [list(s) for s in sizes]
    for r in res["sizes"]:
        assert set(SIZE_KEYS) <= set(r) and len(r["measured_ms"]) == n + near_n
        assert all(ms > 0 for ms in r["measured_ms"] + r["retest_ms"])
    return table, res


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_backend_measures_a_table_and_validates(backend, tmp_path):
    table, _ = _measure_and_validate(backend)
    table.save(tmp_path / "t.json")
    loaded = LatencyTable.load(tmp_path / "t.json")
    assert loaded.backend == backend and loaded.meta["backend_info"] == table.meta["backend_info"]
    if backend == "onnxruntime":
        info = table.meta["backend_info"]
        assert info["graph_optimization_level"] == "all" and info["intra_op_threads"] == torch.get_num_threads()


@pytest.mark.slow
def test_torch_compile_measures_a_table_and_validates():
    """torch.compile works here (a C++ compiler is present) but compiles every piece shape and every network:
    minutes even for this tiny space. Compiled, the ops of a 32x32 space take no longer than the call itself
    (every op entry at the floor, which a table refuses), so this space is laid out at 96x128."""
    _measure_and_validate("torch-compile", n=2, near_n=0, space=SPACE.replace(input_size=(96, 128)),
                          sizes=[(96, 128)])


@pytest.mark.slow
def test_torch_compile_times_a_piece():
    ms = measure_key(CONV, "cpu", warmup=1, repeats=2, backend=make_backend("torch-compile"))
    assert ms > 0


def test_torch_compile_failure_is_a_clear_refusal(monkeypatch):
    def broken(module, **kw):
        def run(*a):
            raise RuntimeError("InductorError: no C++ compiler\n(long traceback)")

        return run

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.raises(BackendUnavailable, match="^torch.compile failed: InductorError: no C\\+\\+ compiler$"):
        measure_key(CONV, backend=make_backend("torch-compile"))


def test_every_registered_backend_is_a_latency_backend():
    assert {"torch", "onnxruntime", "torch-compile"} <= set(LATENCY_BACKENDS)
    for name in LATENCY_BACKENDS:
        assert issubclass(LATENCY_BACKENDS[name], LatencyBackend)
    with pytest.raises(KeyError, match="unknown latency backend 'tflite'; registered: .*onnxruntime"):
        make_backend("tflite")


def test_onnxruntime_refuses_what_it_cannot_run():
    with pytest.raises(BackendUnavailable, match="fp32 only"):
        make_backend("onnxruntime", dtype="bfloat16")
    if not torch.cuda.is_available():
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            with pytest.raises(BackendUnavailable, match="onnxruntime-gpu"):
                make_backend("onnxruntime", device="cuda")


def test_overhead_is_subtracted_and_floored(monkeypatch):
    """A backend's per-call overhead (paid once by a network, once per piece by a table) is taken off every
    entry; an entry never drops to 0 (a table refuses 0 ms)."""
    backend = make_backend("torch")
    monkeypatch.setattr(measure_mod, "time_call", lambda fn, device, warmup, repeats: 5.0)
    monkeypatch.setattr(backend, "call_overhead_ms", lambda: 1.5)
    assert measure_key(CONV, backend=backend) == pytest.approx(3.5)
    monkeypatch.setattr(backend, "call_overhead_ms", lambda: 9.0)
    assert measure_key(CONV, backend=backend) == measure_mod.MIN_ENTRY_MS


def test_onnxruntime_overhead_is_a_trivial_session_run():
    backend = make_backend("onnxruntime")
    assert 0 < backend.call_overhead_ms() < 1.0 and make_backend("torch").call_overhead_ms() == 0.0


def test_tables_without_a_backend_read_as_torch(tmp_path):
    table = LatencyTable.measure(SPACE, repeats=1, warmup=0, progress=False, heads=("aspp",))
    obj = table.to_dict()
    del obj["meta"]["backend"], obj["meta"]["backend_info"]
    (tmp_path / "old.json").write_text(json.dumps(obj))
    old = LatencyTable.load(tmp_path / "old.json")
    assert old.backend == "torch" and old.meta["backend_info"] == {}
    obj["meta"]["backend"] = 3
    (tmp_path / "bad.json").write_text(json.dumps(obj))
    with pytest.raises(LatencyTableError, match="meta.backend"):
        LatencyTable.load(tmp_path / "bad.json")


def _ort_table(tmp_path):
    table = LatencyTable.measure(SPACE, repeats=1, warmup=0, progress=False, heads=("aspp",), backend="onnxruntime")
    p = tmp_path / "ort.json"
    table.save(p)
    return table, p


def test_backends_are_never_mixed(tmp_path):
    table, p = _ort_table(tmp_path)
    assert check_backend(table, None, str(p)) == "onnxruntime" == check_backend(table, "onnxruntime", str(p))
    with pytest.raises(LatencyTableError) as e:
        load_or_measure_table(p, SPACE, backend="torch")
    msg = str(e.value)
    assert "\n" not in msg and str(p) in msg and "'onnxruntime'" in msg and "'torch'" in msg
    assert "--latency-backend" in msg
    assert load_or_measure_table(p, SPACE).backend == "onnxruntime"  # the table's own by default
    with pytest.raises(LatencyTableError, match="backend"):  # resuming a file on another backend
        LatencyTable.measure(SPACE, path=p, progress=False, heads=("aspp",), backend="torch")
    with pytest.raises(LatencyTableError, match="'onnxruntime'.*'torch'"):  # validating on another backend
        validate(table, SPACE, n=2, near_n=0, backend="torch", progress=False)
    with pytest.raises(LatencyTableError, match="backend"):
        table.merge(LatencyTable(meta={**table.meta, "backend": "torch"}))


def test_cli_backend_flags(tmp_path, capsys):
    _, p = _ort_table(tmp_path)
    space = ["--num-cells", "3", "--num-nodes", "2", "--reduction-cells", "1", "--channels", "4",
             "--input-size", "32", "32", "--num-classes", "9"]
    assert main(["latency", "measure", *space, "--heads", "aspp", "--out", str(p), "--backend", "torch",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(p) in err and "'onnxruntime'" in err and "'torch'" in err
    assert main(["latency", "validate", *space, "--table", str(p), "--backend", "torch", "--no-progress"]) == 2
    assert "'onnxruntime'" in capsys.readouterr().err
    g = tmp_path / "g.json"
    from gasgnn import random_genotype

    random_genotype(SPACE, torch.Generator().manual_seed(0)).save(g)
    assert main(["latency", "predict", "--table", str(p), "--genotype", str(g), "--backend", "torch"]) == 2
    assert "'onnxruntime'" in capsys.readouterr().err
    assert main(["latency", "predict", "--table", str(p), "--genotype", str(g), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    table = LatencyTable.load(p)
    assert res["backend"] == "onnxruntime"
    assert res["sizes"][0]["predicted_ms"] == pytest.approx(table.predict(random_genotype(
        SPACE, torch.Generator().manual_seed(0))))
    # a size the table lacks: refused, or measured on the table's backend and saved
    assert main(["latency", "predict", "--table", str(p), "--genotype", str(g), "--sizes", "24", "40"]) == 2
    assert "lacks" in capsys.readouterr().err
    assert main(["latency", "predict", "--table", str(p), "--genotype", str(g), "--sizes", "24", "40",
                 "--measure-missing"]) == 0
    assert "24x40" in capsys.readouterr().out and LatencyTable.load(p).backend == "onnxruntime"
    assert [24, 40] in LatencyTable.load(p).meta["input_sizes"]


def test_a_user_defined_backend_is_one_registered_class():
    calls = []

    @LATENCY_BACKENDS.register("test-channels-last")
    class ChannelsLast(LatencyBackend):
        def info(self):
            return {"memory_format": "channels_last"}

        def prepare(self, module, inputs):
            module = module.to(memory_format=torch.channels_last)
            inputs = tuple(x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x for x in inputs)
            calls.append(type(module).__name__)
            return lambda: module(*inputs)

    try:
        table = LatencyTable.measure(SPACE, repeats=1, warmup=0, progress=False, heads=("aspp",),
                                     backend="test-channels-last")
        assert table.backend == "test-channels-last"
        assert table.meta["backend_info"] == {"memory_format": "channels_last"}
        assert "Stem" in calls and "PieceFn" in calls
        res = validate(table, SPACE, n=2, near_n=0, repeats=1, warmup=0, rounds=1, progress=False)
        assert res["backend"] == "test-channels-last" and "GASNet" in calls
    finally:
        LATENCY_BACKENDS.remove("test-channels-last")


def test_bench_runs_the_latency_backends(tiny_space, tmp_path, capsys):
    from gasgnn import random_genotype

    g = random_genotype(tiny_space, torch.Generator().manual_seed(0))
    gp = tmp_path / "g.json"
    g.save(gp)
    argv = ["bench", "--genotype", str(gp), "--head", "aspp", "--sizes", "32", "32", "--head-channels", "8",
            "--warmup", "1", "--iters", "2", "--rounds", "1", "--no-progress", "--json"]
    assert main([*argv, "--backend", "torch", "onnxruntime"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert [r["backend"] for r in rep["results"]] == ["torch", "onnxruntime"] and rep["skipped"] == []
    assert main([*argv, "--backend", "tflite"]) == 2
    assert "unknown backend 'tflite'" in capsys.readouterr().err


def test_piece_modules_run_on_every_cheap_backend():
    """Every kind of piece exports to ONNX and runs in a session (the sums, concat and upsampling too)."""
    keys = LatencyTable().required_keys(SPACE, heads=("aspp", "ppm"))
    kinds = {}
    for k in keys:
        kinds.setdefault((k.kind, k.params[0] if k.kind in ("op", "head", "pre") else None), k)
    backend = make_backend("onnxruntime")
    for key in kinds.values():
        fn = measure_mod.piece_runner(key, "cpu", None, 0, backend)
        fn()
    assert len(kinds) >= 12


def test_torch_backend_calls_a_piece_function_directly():
    """A node sum is the Python sum the cell makes, not a module call."""
    m, xs, _ = measure_mod.piece(LatencyKey("sum", (2, 4, 8, 8), "float32", 1))
    run = make_backend("torch").prepare(m, xs)
    m.forward = lambda *a: (_ for _ in ()).throw(AssertionError("module call"))  # noqa: ARG005
    assert torch.equal(run(), xs[0] + xs[1])
    assert isinstance(m, nn.Module)


def test_onnxruntime_pieces_run_hot_on_sessions_that_do_not_spin(monkeypatch):
    """Many sessions share the cores in a table or a validation: none of them spins while idle, and a piece
    is timed on one hot session (cycling through copies would time each session's thread wake-up)."""
    monkeypatch.setattr("gasgnn.latency.measure.COLD_BYTES", 2**30)  # cold copies where a backend wants them
    made = []
    backend = make_backend("onnxruntime")
    real = backend._session

    def session(model):
        made.append(real(model))
        return made[-1]

    monkeypatch.setattr(backend, "_session", session)
    measure_mod.piece_runner(CONV, backend=backend)()
    assert len(made) == 1 and not backend.cold_copies
    opts = made[0].get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    torch_backend = make_backend("torch")
    calls = []
    monkeypatch.setattr(torch_backend, "prepare", lambda m, xs: calls.append(m) or (lambda: None))
    measure_mod.piece_runner(CONV, backend=torch_backend)
    assert len(calls) > 1  # eager pieces still cycle through cold copies
