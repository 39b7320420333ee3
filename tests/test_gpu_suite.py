"""The GPU suite (benchmarks/gpu_suite.py) on the CPU: the dry run, and that no failure loses a result.

Every run here is a subprocess (the suite forks its rows; pytest's own process must not be forked).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "benchmarks" / "gpu_suite.py"
sys.path.insert(0, str(REPO / "benchmarks"))

from gpu_report import render  # noqa: E402
from gpu_rows import ROWS, SECTIONS, TAIL  # noqa: E402


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    env.pop("GASGNN_GPU_SUITE_FAULT", None)
    env.pop("GASGNN_CAMVID", None)  # the short search reads only the CamVid a test gives it
    env.update(extra)
    return env


def suite(out, *args, env=None, timeout=600):
    return subprocess.run([sys.executable, str(SUITE), "--out", str(out), *args], env=env or _env(), cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def result(out):
    return json.loads((Path(out) / "gpu_suite.json").read_text())


def statuses(res):
    return {r["id"]: r["status"] for r in res["rows"]}


def test_dry_run_every_section_ok(tmp_path):
    from gasgnn.data import pack_camvid
    from gasgnn.testing import make_camvid_tree

    root = make_camvid_tree(tmp_path / "CamVid", {"train": 8, "val": 2, "test": 2}, size=(36, 48))
    pack_camvid(root, tmp_path / "pack", progress=False)  # the short search reads the pack, as on the GPU
    tmp_path = tmp_path / "out"
    r = suite(tmp_path, "--dry-run", "--camvid", str(tmp_path.parent / "pack"))
    assert r.returncode == 0, r.stdout + r.stderr
    res = result(tmp_path)
    assert res["finished"] and res["dry_run"]
    rows = {x["id"]: x for x in res["rows"]}
    assert list(rows) == [x.id for x in ROWS]  # a row for every planned row, in order
    for row in ROWS:
        rec = rows[row.id]
        if row.dry_same_as:  # the CPU path is another row's: recorded, not run twice
            assert rec["status"] == "skipped" and row.dry_same_as in rec["error"]
            assert rows[row.dry_same_as]["status"] == "ok"
        else:
            assert rec["status"] == "ok", f"{row.id}: {rec['error']}"
            assert rec["figures"]["summary"] and rec["seconds"] > 0
    for section in SECTIONS:
        assert any(x["status"] == "ok" for x in rows.values() if x["section"] == section), section
    f = rows["kernels:bandwidth_fp32"]["figures"]
    assert f["triton"]["fwd_gbps"] > 0 and f["reference"]["fwd_gbps"] > 0
    assert f["bytes_fwd"] > 0 and f["bytes_fwdbwd"] > f["bytes_fwd"]
    assert rows["kernels:tests"]["figures"]["passed"] > 0
    for name in ("naive_fp32", "batched_triton_fp32", "batched_compile_small_fp32"):
        f = rows[f"search_step:{name}"]["figures"]
        assert f["median_ms"] > 0 and f["aten_ops_per_step"] > 0
    assert rows["search_step:batched_triton_fp32"]["figures"]["kernel"] == "triton"
    assert rows["search_step:batched_compile_small_fp32"]["figures"]["eager_median_ms"] > 0
    f = rows["fps:1024x2048_fp32_eager"]["figures"]
    assert set(f["networks"]) == {"gas_aspp", "gas_ppm", "hand_light_aspp"} and f["classes"] == 19
    assert f["networks"]["gas_aspp"]["speedup_vs_reference"] > 0
    assert rows["latency:table_validate_720x960"]["figures"]["networks"] >= 4
    s = rows["search:short_search"]["figures"]
    assert s["pack"]["quality"] == 85 and s["pack"]["splits"] == {"train": 8, "val": 2, "test": 2}
    assert s["data"] == f"camvid pack {tmp_path.parent / 'pack'}" and s["derived_ms"] <= s["derived_target_ms"] + 1e-6
    md = (tmp_path / "gpu_suite.md").read_text()
    assert "| 1 | `preflight:device` | ok |" in md and "naive_fp32 | 3 cells x 2 nodes | 2, 32x32 | fp32" in md
    log = (tmp_path / "gpu_suite.log").read_text()
    assert "===== search:short_search: ok" in log


def test_a_failing_row_is_recorded_and_the_next_rows_run(tmp_path):
    """A row that hangs is killed at its timeout, one that crashes or raises is failed; the rest still run."""
    faults = "kernels:bandwidth_fp32=hang,kernels:bandwidth_bf16=crash,fps:720x960_fp32_eager=error"
    r = suite(tmp_path, "--dry-run", "--only", "kernels:bandwidth_fp32,kernels:bandwidth_bf16",
              "--only", "fps:720x960_fp32_eager,fps:1024x2048_fp32_eager", "--max-row-s", "6",
              env=_env(GASGNN_GPU_SUITE_FAULT=faults))
    assert r.returncode == 1, r.stdout + r.stderr
    res = result(tmp_path)
    assert statuses(res) == {"preflight:device": "ok", "kernels:bandwidth_fp32": "timeout",
                             "kernels:bandwidth_bf16": "failed", "fps:1024x2048_fp32_eager": "ok",
                             "fps:720x960_fp32_eager": "failed"}
    rows = {x["id"]: x for x in res["rows"]}
    assert rows["kernels:bandwidth_fp32"]["timeout_s"] == 6 and 6 <= rows["kernels:bandwidth_fp32"]["seconds"] < 30
    assert "timed out after 6 s" in rows["kernels:bandwidth_fp32"]["error"]
    hung = rows["kernels:bandwidth_fp32"]["error"]  # where it hung: every thread's stack just before the kill
    assert "most recent call first" in hung and "in run_row" in hung
    assert "SIGABRT" in rows["kernels:bandwidth_bf16"]["error"]
    assert "injected fault" in rows["fps:720x960_fp32_eager"]["error"]
    assert "Traceback" in rows["fps:720x960_fp32_eager"]["error"]  # the tail of the row's log
    assert res["finished"]


@pytest.mark.slow  # the fallback isolation: every row a fresh interpreter (~1 min here)
def test_spawned_rows_time_out_too(tmp_path):
    r = suite(tmp_path, "--dry-run", "--isolation", "spawn", "--only", "kernels:bandwidth_fp32,kernels:bandwidth_bf16",
              "--max-row-s", "25", env=_env(GASGNN_GPU_SUITE_FAULT="kernels:bandwidth_fp32=hang"))
    res = result(tmp_path)
    st = statuses(res)
    assert st["kernels:bandwidth_fp32"] == "timeout" and st["kernels:bandwidth_bf16"] == "ok", r.stdout + r.stderr
    assert "in run_row" in res["rows"][1]["error"]  # the spawned row dumped its stacks before the kill too


def _running(marker):
    """Processes whose command line holds ``marker`` (the suite's forked rows share its command line)."""
    found = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and marker in (p / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(p.name))
        except OSError:
            pass
    return found


def test_killed_suite_leaves_the_rows_done(tmp_path):
    env = _env(GASGNN_GPU_SUITE_FAULT="fps:1024x2048_fp32_eager=hang")
    proc = subprocess.Popen([sys.executable, str(SUITE), "--out", str(tmp_path), "--dry-run", "--only", "fps"],
                            env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path, rows = tmp_path / "gpu_suite.json", []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len(rows) < 2:
            time.sleep(0.2)
            if path.is_file():
                rows = json.loads(path.read_text())["rows"]  # always valid: written atomically
        assert len(rows) >= 2, "the suite wrote no row in time"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    res = result(tmp_path)
    assert not res["finished"]
    assert [x["id"] for x in res["rows"]] == ["preflight:device", "fps:1024x2048_fp16_eager"]
    # the hanging row dies with the suite (PR_SET_PDEATHSIG): nothing keeps running on a device being given back
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _running(str(tmp_path)):
        time.sleep(0.2)
    assert not _running(str(tmp_path))
    assert all(x["status"] == "ok" for x in res["rows"])
    assert "Unfinished" in (tmp_path / "gpu_suite.md").read_text()


def test_preflight_failure_stops_the_suite_with_a_clear_row(tmp_path):
    r = suite(tmp_path, "--dry-run", env=_env(GASGNN_GPU_SUITE_FAULT="preflight:device=error"))
    assert r.returncode == 1
    res = result(tmp_path)
    assert res["rows"][0]["status"] == "failed" and "injected fault" in res["rows"][0]["error"]
    assert len(res["rows"]) == len(ROWS)
    assert all(x["status"] == "skipped" and "preflight failed" in x["error"] for x in res["rows"][1:])


def test_budget_ends_the_run_in_time(tmp_path):
    r = suite(tmp_path, "--dry-run", "--budget-s", "0.5")
    res = result(tmp_path)
    assert r.returncode == 0 and res["finished"]
    assert all(x["status"] == "skipped" for x in res["rows"])
    assert "over the budget" in res["rows"][0]["error"]


def test_only_reruns_a_part_and_keeps_the_rest(tmp_path):
    r = suite(tmp_path, "--dry-run", "--only", "kernels:bandwidth_fp32")
    assert r.returncode == 0, r.stdout + r.stderr
    first = {x["id"]: x for x in result(tmp_path)["rows"]}
    r = suite(tmp_path, "--dry-run")  # an existing result is not replaced without --overwrite
    assert r.returncode == 2 and "--overwrite" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = suite(tmp_path, "--dry-run", "--only", "fps:720x960_fp32_eager")
    assert r.returncode == 0, r.stdout + r.stderr
    res = result(tmp_path)
    assert list(statuses(res)) == ["preflight:device", "kernels:bandwidth_fp32", "fps:720x960_fp32_eager"]
    rows = {x["id"]: x for x in res["rows"]}
    assert rows["kernels:bandwidth_fp32"] == first["kernels:bandwidth_fp32"]  # kept as it was
    assert len(res["runs"]) == 2 and res["runs"][1]["only"] == ["fps:720x960_fp32_eager"]


def test_bad_only_is_one_clear_line(tmp_path):
    r = suite(tmp_path, "--dry-run", "--only", "kernels,nonsense")
    assert r.returncode == 2
    assert r.stderr.strip() == ("gpu_suite: error: --only: unknown section or row nonsense; sections: "
                                + ", ".join(SECTIONS) + " (rows: --list)")
    assert not (tmp_path / "gpu_suite.json").exists()


def test_rows_fit_the_budget_most_valuable_first():
    ids = [r.id for r in ROWS]
    assert ids[0] == "preflight:device" and len(set(ids)) == len(ids)
    # every row but the tail (the 12-cell CUDA-graph compile, ...: they take what is left) fits the default
    # budget with a margin for the suite's own seconds
    assert ids[-len(TAIL):] == list(TAIL)
    assert sum(r.expected_s for r in ROWS if r.id not in TAIL) <= 410
    assert ids.index("kernels:tests") < ids.index("search_step:naive_fp32") < ids.index("fps:1024x2048_fp16_eager")
    assert ids.index("search_step:batched_cudagraphs_small_fp32") < ids.index("search_step:batched_cudagraphs_fp32")
    assert all(r.cap_s >= r.expected_s for r in ROWS)


def test_report_shows_pending_rows():
    md = render({"planned": [r.id for r in ROWS], "expected": {r.id: r.expected_s for r in ROWS}, "rows": []},
                pending="not yet run")
    for r in ROWS:
        assert f"| `{r.id}` | not yet run | - ({r.expected_s:.0f}) |" in md
    assert md.count("| not yet run |") >= len(ROWS) + 4  # the detail tables too


def test_docs_lay_out_every_row():
    text = (REPO / "docs" / "benchmarks.md").read_text()
    gpu = text[text.index("## GPU suite"):]
    for r in ROWS:
        assert f"`{r.id}`" in gpu, r.id
    assert "PYTHONPATH=. python benchmarks/gpu_suite.py --out runs/gpu --camvid data_pack/camvid" in gpu


@pytest.mark.parametrize("name,peak", [("NVIDIA H200", 4800), ("NVIDIA GH200 480GB", 4000),
                                       ("NVIDIA H100 PCIe", 2000), ("NVIDIA H100 80GB HBM3", 3350)])
def test_peak_bandwidth_of_known_devices(name, peak):
    from gpu_common import peak_bandwidth

    assert peak_bandwidth(None, name)["peak_gbps"] == pytest.approx(peak)


def test_peak_bandwidth_from_device_properties():
    from types import SimpleNamespace

    from gpu_common import peak_bandwidth

    props = SimpleNamespace(name="X", memory_clock_rate=3_201_000, memory_bus_width=6144)  # kHz, bits: an H200
    assert peak_bandwidth(props)["peak_gbps"] == pytest.approx(4917, rel=1e-3)
