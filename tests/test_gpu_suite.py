"""The GPU suite runs end to end on the CPU with --dry-run (so it cannot rot between GPU sessions)."""

import importlib.util
import json
from pathlib import Path

SUITE = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_suite.py"


def test_gpu_suite_dry_run(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_suite", SUITE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(["--out", str(tmp_path), "--dry-run"])
    res = json.loads((tmp_path / "gpu_suite.json").read_text())
    secs = res["sections"]
    assert set(secs) == {"kernels", "search_step", "fps", "latency"}
    for name, sec in secs.items():
        assert not (isinstance(sec, dict) and "error" in sec), f"{name}: {sec.get('error')}"
    assert secs["kernels"]["returncode"] == 0, secs["kernels"]["summary"]
    row = secs["search_step"][0]
    assert set(row["variants"]) == {"naive", "per_edge", "batched"}
    assert all(v["median_s"] > 0 for v in row["variants"].values())
    assert {r["model"] for b in secs["fps"] for r in b["results"]} == {"aspp", "ppm"}
    assert secs["latency"]["sizes"]
    md = (tmp_path / "gpu_suite.md").read_text()
    assert "| 2 | False | False | batched |" in md
