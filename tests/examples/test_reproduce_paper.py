"""examples/reproduce_paper.py end to end on the synthetic dataset at tiny sizes (slow: ~30 subprocesses),
and its pieces (budget names, calibration rule, resumable jobs) quickly."""

import json
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))

import reproduce_paper as rp  # noqa: E402
from repro import protocol  # noqa: E402
from repro.jobs import Budget, Job, run_jobs  # noqa: E402

TINY = ["--data", "synthetic", "--num-classes", "9", "--num-cells", "3", "--channels", "4", "--size", "32", "32",
        "--crop", "32", "32",
        "--epochs", "2", "--warmup-epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2",
        "--train-crop", "32", "32", "--scale-range", "0.9", "1.1", "--train-max-iters", "2", "--random-samples", "2",
        "--random-steps", "1", "--bench-iters", "2", "--test-split", "val"]


def test_budget_names_round_trip_and_bad_names_are_refused():
    b = Budget.parse("simple64_e12")
    assert (b.head, b.head_channels, b.epochs, b.name) == ("simple", 64, 12, "simple64_e12")
    for bad in ("simple_e6", "simple64", "64_e6", "simple64_ex"):
        with pytest.raises(ValueError, match="HEAD<channels>_e<epochs>"):
            Budget.parse(bad)
    with pytest.raises(SystemExit):
        rp.parse_args(["--budgets", "aspp"])
    with pytest.raises(SystemExit):
        rp.parse_args(["--variants", "none"])  # gcn_sim is needed


def _fake_calibration(tmp_path, budget, values):
    args = rp.parse_args(["--out", str(tmp_path), "--budgets", budget, "--calib-seeds", "0", "1"])
    for (net, seed), miou in values.items():
        d = tmp_path / "calib" / budget / f"{net}_s{seed}"
        d.mkdir(parents=True)
        (d / "result.json").write_text(json.dumps({"eval": {"miou": miou / 100}, "train": {"seconds": 60}}))
    return args


def test_calibration_picks_the_first_budget_that_separates(tmp_path):
    sep = {("skip_only", 0): 25.0, ("skip_only", 1): 25.4, ("hand_light", 0): 31.0, ("hand_light", 1): 31.6,
           ("gcn_sim", 0): 30.0, ("gcn_sim", 1): 29.0}
    args = _fake_calibration(tmp_path / "a", "simple64_e6", sep)
    cal = protocol.calibration(args, args.budget_list)
    assert cal["chosen"] == "simple64_e6" and cal["budgets"][0]["gaps"]["hand_light"]["gap"] == pytest.approx(6.1)
    close = {**sep, ("gcn_sim", 0): 27.0, ("gcn_sim", 1): 26.0}  # searched only 1.3 points above skip_only
    args = _fake_calibration(tmp_path / "b", "simple64_e6", close)
    assert protocol.calibration(args, args.budget_list)["chosen"] is None
    noisy = {**sep, ("gcn_sim", 0): 34.0, ("gcn_sim", 1): 24.0}  # mean 29 but a spread of 7 points
    args = _fake_calibration(tmp_path / "c", "simple64_e6", noisy)
    assert protocol.calibration(args, args.budget_list)["chosen"] is None


def test_a_job_is_done_only_after_all_its_commands(tmp_path):
    ok = [sys.executable, "-c", "print('{\"x\": 1}')"]
    bad = [sys.executable, "-c", "import sys; sys.exit(3)"]
    job = Job("j", [ok, bad], tmp_path / "done.json", ["a", "b"])
    with pytest.raises(SystemExit, match="j: exit 3"):
        run_jobs([job], 1, tmp_path / "logs", 1, "t")
    assert not job.done.exists()  # the first command's output alone does not mark it done
    job = Job("j", [ok, ok], tmp_path / "done.json", ["a", "b"])
    run_jobs([job], 1, tmp_path / "logs", 1, "t")
    assert json.loads(job.done.read_text())["b"] == {"x": 1}


@pytest.mark.slow
def test_reproduce_paper_end_to_end_on_synthetic_data(tmp_path, capsys):
    out = tmp_path / "repro"
    argv = [*TINY, "--out", str(out), "--variants", "gcn_sim", "none", "random", "--default", "gcn_sim",
            "--seeds", "0", "1", "--budgets", "simple8_e1", "--budget", "simple8_e1", "--sweep", "0",
            "--sweep-seeds", "0", "--jobs", "2", "--heads-channels", "8", "--heads-size", "32", "32"]
    rp.main(argv)
    res = json.loads((out / "results.json").read_text())
    assert res["budget"] == "simple8_e1"  # given; the calibration still ran and is reported
    cal = res["calibration"]["budgets"][0]["test_miou"]
    assert {k: len(v) for k, v in cal.items()} == {"skip_only": 2, "hand_light": 2, "gcn_sim": 2}
    rows = {r["network"]: r for r in res["guides"]}
    assert set(rows) == {"gcn_sim", "none", "random", "skip_only", "hand_light"}
    assert rows["gcn_sim"]["vs_none"]["n"] == 2 and "vs_none" not in rows["none"]
    assert all(r["measured_ms"] > 0 for r in res["records"])
    # random search is matched in latency to the gcn_sim networks (the lighten sampler reaches the target)
    from gasgnn import Genotype
    from gasgnn.latency import LatencyTable

    table = LatencyTable.load(out / "latency_table.json")
    for s in (0, 1):
        target = json.loads((out / "search" / f"random_s{s}" / "config.json").read_text())["target_ms"]
        gcn = json.loads((out / "search" / f"gcn_sim_s{s}" / "result.json").read_text())["search"]
        assert target == pytest.approx(gcn["predicted_latency_ms"], abs=1e-3)  # matched seed by seed
        assert table.predict(Genotype.load(out / "search" / f"random_s{s}" / "genotype.json")) <= target
    m = res["matched"]  # op statistics with every searched network at one predicted latency
    assert {r["network"] for r in m["rows"]} == {"gcn_sim", "none", "random"}
    assert all(r["predicted_ms"] <= m["target_ms"] + 1e-9 for r in m["records"])
    report = (out / "report.md").read_text()
    assert "matched latency" in report and "| gcn_sim_w0 | 1 |" in report  # the sweep's row in the Pareto table
    assert "| gcn_sim | 2 |" in report and "| simple8_e1 | simple 8 | 1 |" in report
    assert (out / "figures" / "repro_guides.png").is_file()
    from repro import analysis

    gcn = next(r for r in res["records"] if r["network"] == "gcn_sim")  # the guide's diagnostics, last epoch
    assert gcn["guide_distinct_sources"] >= 1 and gcn["guide_update_ratio"] >= 0
    assert "distinct arg-max sources" in report and "| gcn_sim | 2 |" in analysis.diagnostics_table(res["guides"])
    t1 = res["table1"]  # both heads on the same searched networks, paired by seed, timed in torch and ORT
    assert {r["head"] for r in t1["records"]} == {"aspp", "ppm"} and t1["ppm_minus_aspp"]["n"] == 2
    assert set(t1["fps"]["aspp"]) == {"torch", "onnxruntime"} and t1["fps_ratio"]["torch"]["mean"] > 0
    assert "## Table 1" in report and "| PPM - ASPP (paired) | 2 |" in report
    assert (out / "figures" / "repro_table1.png").is_file()
    # a second run finds every job done and starts nothing
    capsys.readouterr()
    rp.main(argv)
    log = capsys.readouterr().out
    counts = [line.split("running ")[1] for line in log.splitlines() if "done, running" in line]
    assert counts and all(c.startswith("0") for c in counts)


def test_interrupted_jobs_resume_or_start_over(tmp_path):
    echo = [sys.executable, "-c", "import json, sys; print(json.dumps({'argv': sys.argv[1:]}))"]
    run = tmp_path / "run"

    def job(name):
        return Job(name, [echo], tmp_path / f"{name}.json", ["a"], resume_flag=run / "last.pt", restart_flag=run)

    run_jobs([job("fresh")], 1, tmp_path / "logs", 1, "t")  # nothing there yet: plain
    run.mkdir()
    run_jobs([job("killed_early")], 1, tmp_path / "logs", 1, "t")  # a directory without a checkpoint
    (run / "last.pt").write_text("x")
    run_jobs([job("killed_late")], 1, tmp_path / "logs", 1, "t")  # a checkpoint: resume it
    argv = {n: json.loads((tmp_path / f"{n}.json").read_text())["a"]["argv"] for n in
            ("fresh", "killed_early", "killed_late")}
    assert argv == {"fresh": [], "killed_early": ["--overwrite"], "killed_late": ["--resume"]}


def test_op_statistics_are_counted_at_one_latency(tmp_path):
    """Every searched network is walked down to the common target; one already under it is left as it is."""
    import torch
    from repro import matched

    from gasgnn import SearchSpace
    from gasgnn.genotype import derive
    from gasgnn.latency import LatencyTable

    space = SearchSpace(num_cells=3, num_nodes=2, reduction_cells=(1,), channels=4, input_size=(32, 32),
                        num_classes=9)
    args = rp.parse_args(["--out", str(tmp_path), "--size", "32", "32", "--variants", "gcn_sim", "random",
                          "--default", "gcn_sim"])
    table = LatencyTable.measure(space, repeats=1, warmup=0, progress=False, heads=("simple",), head_channels=8)
    for k, _ in table.items():  # fixed op costs (conv dearest, skip cheapest): no timing noise in the ranking
        if k.kind == "op":
            table[k] = {"skip_connect": 0.01, "max_pool_3x3": 0.2}.get(k.params[0], 1.0) * k.params[2]
    table.save(tmp_path / "latency_table.json")
    budget = Budget.parse("simple8_e1")
    conv, light = torch.zeros(space.num_arch_nodes, space.num_ops), torch.zeros(space.num_arch_nodes, space.num_ops)
    conv[:, space.ops.index("conv_3x3")] = 2.0
    light[:, space.ops.index("skip_connect")] = 2.0
    nets = {("gcn_sim", 0): conv, ("gcn_sim", 1): light, ("random", 0): conv, ("random", 1): light}
    for (v, s), alpha in nets.items():
        d = protocol.search_dir(args, v, s)
        d.mkdir(parents=True)
        derive(space, alpha).save(d / "genotype.json")
        if v != "random":
            torch.save(torch.stack([torch.zeros_like(alpha), alpha]), d / "alpha_history.pt")
    pred = {k: table.predict(derive(space, a), head="simple", head_channels=8) for k, a in nets.items()}
    m = matched.matched_stats(args, budget, ["gcn_sim", "random"], [0, 1])
    # the lowest variant mean (both variants: one heavy, one light network)
    assert m["target_ms"] == pytest.approx((pred["gcn_sim", 0] + pred["gcn_sim", 1]) / 2)
    recs = {(r["network"], r["seed"]): r for r in m["records"]}
    assert set(recs) == set(nets) and all(r["predicted_ms"] <= m["target_ms"] + 1e-9 for r in recs.values())
    assert recs["gcn_sim", 1]["cut_ms"] == 0.0  # already under: counted as it is
    assert recs["gcn_sim", 0]["cut_ms"] > 0 and recs["random", 0]["cut_ms"] > 0
    assert recs["gcn_sim", 0]["light_ops"] > 0  # convs gave way to lighter ops
    assert [r["network"] for r in m["rows"]] == ["gcn_sim", "random"] and m["rows"][0]["n"] == 2
    c = m["rows"][0]["light_ops_vs_random"]  # paired over the seeds both have
    assert c["n"] == 2 and c["seeds"] == [0, 1] and "light_ops_vs_random" not in m["rows"][1]
    assert c["mean_diff"] == pytest.approx((recs["gcn_sim", 0]["light_ops"] - recs["random", 0]["light_ops"]) / 2)
    assert "| gcn_sim | 2 |" in matched.matched_table(m)
    fixed = matched.matched_stats(args, budget, ["gcn_sim", "random"], [0, 1], target_ms=1e6)
    assert all(r["cut_ms"] == 0.0 for r in fixed["records"])


def test_search_diagnostics_are_the_last_epochs(tmp_path):
    from repro import analysis

    from gasgnn.runner import RunDir

    run = RunDir(tmp_path / "s")
    run.path.mkdir()
    run.write_metrics([{"epoch": 1, "guide_update_ratio": 0.5, "guide_distinct_sources": 3.0},
                       {"epoch": 2, "guide_update_ratio": 0.25, "guide_distinct_sources": 7.5,
                        "guide_attention_entropy": float("nan")}],
                      fields=["epoch", "guide_update_ratio", "guide_distinct_sources", "guide_attention_entropy"])
    # the last epoch's values; a diagnostic the guide does not define (nan) is left out
    assert analysis.search_diagnostics(run.path) == {"guide_update_ratio": 0.25, "guide_distinct_sources": 7.5}
    assert analysis.search_diagnostics(tmp_path / "random") == {}  # nothing logged, nothing reported
    recs = [{"network": n, "seed": s, "test_miou": 30.0 + s, "guide_update_ratio": 0.1 * (s + 1),
             "guide_distinct_sources": 5.0 + s} for n in ("slot_sim", "none") for s in (0, 1)]
    for r in recs[2:]:  # no guide, no diagnostics
        del r["guide_update_ratio"], r["guide_distinct_sources"]
    text = analysis.diagnostics_table(analysis.compare(recs, ["slot_sim", "none"]))
    assert "| slot_sim | 2 | 5.5 ± 0.7 | 0.150 ± 0.071 | - |" in text and "| none |" not in text
    assert analysis.diagnostics_table(analysis.compare(recs[2:], ["none"])) == ""  # nothing to show, no table


@pytest.mark.parametrize("page, data", [("results.md", "results.json"),
                                         ("results_earlier.md", "results_2026-12-01.json")])
def test_the_results_page_tables_are_rendered_from_results_json(page, data):
    """docs/results.md's tables are the report's tables of docs/results.json, row for row (and the earlier
    protocol's page of its own JSON): a number edited by hand in the page, or a results.json not copied
    after a re-run, fails here."""
    from repro import analysis, matched

    docs = Path(__file__).resolve().parents[2] / "docs"
    res = json.loads((docs / data).read_text())
    text = (docs / page).read_text()
    tables = [analysis.guide_table(res["guides"]), analysis.pareto_table(res["pareto"])]
    tables.append(analysis.diagnostics_table(res["guides"]))  # empty for a run without the diagnostics
    if res["calibration"].get("budgets") and any(b.get("test_miou") for b in res["calibration"]["budgets"]):
        tables.append(analysis.calibration_table(res["calibration"]))
    if res.get("matched"):
        tables.append(matched.matched_table(res["matched"]))
    if res.get("table1"):
        from repro import table1

        tables.append(table1.table1_table(res["table1"]))
    rows = [line for t in tables for line in t.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) > 10
    missing = [r for r in rows if r not in text]
    assert not missing, f"docs/{page} lacks these rows of docs/{data}: {missing[:3]}"


def test_jobs_fix_the_thread_count_of_every_command(tmp_path, monkeypatch):
    """Two jobs started together must not both take every core (--threads auto sees an idle machine)."""
    monkeypatch.setenv("GASGNN_THREADS", "auto")
    show = [sys.executable, "-c", "import json, os; print(json.dumps({k: os.environ.get(k) for k in "
            "('GASGNN_THREADS', 'OMP_NUM_THREADS')}))"]
    job = Job("t", [show], tmp_path / "done.json", ["a"])
    run_jobs([job], 1, tmp_path / "logs", 1, "t")
    assert json.loads(job.done.read_text())["a"] == {"GASGNN_THREADS": "1", "OMP_NUM_THREADS": "1"}


def test_table1_pairs_the_heads_by_seed(tmp_path):
    from repro import table1

    args = rp.parse_args(["--out", str(tmp_path), "--default", "gcn_sim", "--variants", "gcn_sim", "none",
                          "--seeds", "0", "1", "2", "--heads-channels", "16"])
    budget = Budget.parse("simple64_e6")
    miou = {("aspp", 0): 30.0, ("aspp", 1): 31.0, ("aspp", 2): 29.5, ("ppm", 0): 31.0, ("ppm", 1): 31.5}
    for (h, s), m in miou.items():
        d = protocol.train_dir(args, Budget(h, 16, 6), "gcn_sim", s)
        d.mkdir(parents=True)
        (d / "result.json").write_text(json.dumps({"eval": {"miou": m / 100}, "train": {"best_miou": 0.3}}))
    assert [j.done.parent.parent.name for j in table1.jobs(args, budget)][:2] == ["aspp16_e6", "ppm16_e6"]
    t = table1.table1(args, budget, time_networks=False)
    assert t["heads"]["aspp"]["test_miou"]["n"] == 3 and t["heads"]["ppm"]["test_miou"]["n"] == 2
    c = t["ppm_minus_aspp"]  # paired over the seeds both heads have
    assert c["seeds"] == [0, 1] and c["mean_diff"] == pytest.approx(0.75)
    text = table1.table1_table(t)
    assert "| aspp 16 | 3 |" in text and "| PPM - ASPP (paired) | 2 | +0.75" in text and "72.4" in text
    from repro import analysis  # the figure draws the pairing: one line per seed that has both heads

    t["backends"], t["fps"] = ["torch"], {"aspp": {"torch": {"mean": 50.0, "std": 1.0}},
                                          "ppm": {"torch": {"mean": 55.0, "std": 1.0}}}
    fig = analysis.table1_figure(t, tmp_path / "t1.png")
    assert fig.is_file() and fig.stat().st_size > 5000


TINY_DEVICE = [*TINY, "--variants", "gcn_sim", "none", "--default", "gcn_sim", "--seeds", "0", "1",
               "--budget", "simple8_e1", "--stage", "device", "--jobs", "2"]


def test_device_plan_fits_the_budget(tmp_path, capsys):
    """--plan lists every chain with its estimate and takes, seed-major, those whose makespan fits."""
    out = tmp_path / "d"
    rp.main([*TINY_DEVICE, "--out", str(out), "--plan", "--budget-s", "100000"])
    text = capsys.readouterr().out
    rows = [ln.split() for ln in text.splitlines() if ln.startswith(("gcn_sim_s", "none_s"))]
    assert [r[0] for r in rows] == ["gcn_sim_s0", "none_s0", "gcn_sim_s1", "none_s1"]  # seed-major
    assert all(r[1] == "run" for r in rows)
    one = float(rows[0][2])  # one chain's estimate; 2 processes at twice one's pace, the table's 120 s first:
    budget = 120 + one + 1  # admits exactly two chains (the first seed's)
    rp.main([*TINY_DEVICE, "--out", str(out), "--plan", "--budget-s", str(budget), "--gain", "2"])
    rows = [ln.split() for ln in capsys.readouterr().out.splitlines() if ln.startswith(("gcn_sim_s", "none_s"))]
    assert [r[1] for r in rows] == ["run", "run", "later", "later"]
    assert all(float(r[3]) <= budget for r in rows if r[1] == "run")
    assert not (out / "search").exists()  # --plan starts nothing


def _kill_after_first_search(out):
    """Starts the device stage, SIGKILLs it (process group) once a search is done; returns progress.json."""
    import os
    import signal
    import subprocess
    import time

    argv = [sys.executable, str(EXAMPLES / "reproduce_paper.py"), *TINY_DEVICE, "--out", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "GASGNN_THREADS": "1"})
    prog = out / "progress.json"
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            if prog.is_file():
                done = [c for c in json.loads(prog.read_text())["chains"].values() if c["search"]["status"] == "done"]
                if done:
                    break
            time.sleep(0.5)
        else:
            pytest.fail("no job finished")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return json.loads(prog.read_text())


def test_killed_device_run_leaves_valid_results(tmp_path, capsys):
    """The device window's end kills the run: progress.json stays valid JSON with the jobs done so far, and the
    next plan counts them as done."""
    out = tmp_path / "d"
    res = _kill_after_first_search(out)
    done = {k: c for k, c in res["chains"].items() if c["search"]["status"] == "done"}
    assert done and all(c["search"]["predicted_ms"] > 0 for c in done.values())
    assert set(res["chains"]) == {"gcn_sim_s0", "none_s0", "gcn_sim_s1", "none_s1"}
    rp.main([*TINY_DEVICE, "--out", str(out), "--plan", "--budget-s", "100000"])
    rows = {ln.split()[0]: ln.split() for ln in capsys.readouterr().out.splitlines()
            if ln.startswith(("gcn_sim_s", "none_s"))}
    for k, c in res["chains"].items():  # a chain is done when both of its jobs are
        assert (rows[k][1] == "done") == (c["train"]["status"] == "done")


@pytest.mark.slow
def test_killed_device_run_resumes_to_the_end(tmp_path):
    out = tmp_path / "d"
    res = _kill_after_first_search(out)
    done = [k for k, c in res["chains"].items() if c["search"]["status"] == "done"]
    before = {k: (out / "search" / k / "result.json").read_text() for k in done}
    rp.main([*TINY_DEVICE, "--out", str(out), "--budget-s", "100000"])
    res = json.loads((out / "progress.json").read_text())
    assert all(c["train"]["status"] == "done" and c["train"]["test_miou"] >= 0 for c in res["chains"].values())
    assert all((out / "search" / k / "result.json").read_text() == v for k, v in before.items())  # not redone
