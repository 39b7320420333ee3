import json

import pytest
import torch
from torch import nn

from gasgnn import random_genotype
from gasgnn.train import BackendUnavailable, benchmark, count_flops, latency_stats, make_runner


def test_latency_stats():
    st = latency_stats([float(v) for v in range(1, 101)])
    assert st["median"] == 50.5 and st["min"] == 1.0 and st["n"] == 100
    assert st["p10"] == pytest.approx(10.9) and st["p90"] == pytest.approx(90.1)
    assert st["iqr"] == pytest.approx(st["q3"] - st["q1"]) and st["iqr"] == pytest.approx(49.5)


def test_count_flops_of_a_conv():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    # 2 FLOPs per multiply-add: 2 * out_pixels * C_out * C_in * k * k
    assert count_flops(conv, (10, 12)) == 2 * 10 * 12 * 8 * 3 * 9


def test_unavailable_combinations_are_reported():
    net = nn.Conv2d(3, 4, 1)
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailable, match="fp16"):
            make_runner(net, (8, 8), dtype="fp16", device="cpu")
    with pytest.raises(BackendUnavailable, match="fp32 only"):
        make_runner(net, (8, 8), backend="onnxruntime", dtype="bf16")
    rep = benchmark(
        {"a": net},
        sizes=[(8, 8)],
        dtype="fp16" if not torch.cuda.is_available() else "fp32",
        warmup=0,
        iters=2,
        rounds=1,
        progress=False,
    )
    if not torch.cuda.is_available():
        assert rep["results"] == [] and rep["skipped"][0]["backend"] == "torch"


def test_bf16_on_cpu_runs():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)).eval()
    rep = benchmark(
        {"net": net},
        sizes=[(8, 8)],
        dtype="bf16",
        channels_last=True,
        warmup=1,
        iters=2,
        rounds=2,
        progress=False,
    )
    (r,) = rep["results"]
    assert r["dtype"] == "bf16" and r["channels_last"] and r["latency_ms"]["n"] == 2
    assert next(net.parameters()).dtype == torch.float32  # the caller's model is not converted


def test_cli_bench_json_both_heads(tiny_space, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from gasgnn.cli import main

    g = random_genotype(tiny_space, torch.Generator().manual_seed(0))
    gp = tmp_path / "g.json"
    g.save(gp)
    rc = main(
        [
            "bench",
            "--genotype",
            str(gp),
            "--sizes",
            "32",
            "32",
            "32",
            "48",
            "--head-channels",
            "8",
            "--warmup",
            "1",
            "--iters",
            "4",
            "--rounds",
            "2",
            "--onnxruntime",
            "--no-progress",
            "--json",
            "--out",
            str(tmp_path / "bench.json"),
        ]
    )
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep == json.loads((tmp_path / "bench.json").read_text())
    assert {"environment", "results", "comparisons", "skipped", "settings", "genotype"} <= set(rep)
    assert rep["skipped"] == []
    rows = {(r["model"], tuple(r["size"]), r["backend"]) for r in rep["results"]}
    assert rows == {
        (h, s, b) for h in ("aspp", "ppm") for s in ((32, 32), (32, 48)) for b in ("torch", "onnxruntime")
    }
    for r in rep["results"]:
        lat = r["latency_ms"]
        assert {"median", "p10", "p90", "iqr", "mean", "min", "n"} <= set(lat) and lat["n"] == 4
        assert lat["p10"] <= lat["median"] <= lat["p90"]
        assert r["fps"] == pytest.approx(1000 / lat["median"])
        assert r["params"] > 0 and r["flops"] > 0 and r["batch"] == 1
        assert "peak_memory_mb" in r and "memory_note" in r
    ppm = next(r for r in rep["results"] if r["model"] == "ppm")
    aspp = next(r for r in rep["results"] if r["model"] == "aspp")
    assert ppm["params"] != aspp["params"]
    assert len(rep["comparisons"]) == 4
    c = rep["comparisons"][0]
    assert c["baseline"] == "aspp" and c["model"] == "ppm" and c["speedup"] > 0
