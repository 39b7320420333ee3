"""Issue 19 end to end through the command line: re-runs, resume with changed settings, work that cannot
happen, unreadable inputs. Each case gives one clear error line and loses nothing earlier: exit 2 for bad
input, 3 for a run refused as asked (another run in --out, nothing or something else to resume)."""

import json

import pytest
import torch

from gasgnn.cli import main

from .conftest import search


def _err(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_search_rerun_resume_and_changes(tmp_path, table_file, capsys):
    out = tmp_path / "a"
    assert main(search(out, table_file)) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    # 1. a plain re-run is refused; nothing is touched
    assert main(search(out, table_file)) == 3
    assert "already holds a run" in _err(capsys)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    # 4. resume with other settings: every difference named, nothing written
    assert main(search(out, table_file, "--resume", "--latency-weight", "0.5", "--w-lr", "0.01", "--seed", "3")) == 3
    err = _err(capsys)
    for name in ("latency_weight", "w_lr", "seed", "--allow-changes"):
        assert name in err, name
    assert (out / "config.json").read_bytes() == before["config.json"]
    # a changed guide cannot be loaded: a clear refusal, not a state_dict traceback
    assert main(search(out, table_file, "--resume", "--guide", "fc", "--allow-changes")) == 3
    assert "another network" in _err(capsys)
    # 3. --allow-changes applies the new learning rates to the optimiser AND its schedule, and records them
    assert main(search(out, table_file, "--resume", "--epochs", "3", "--w-lr", "0.01", "--allow-changes")) == 0
    capsys.readouterr()
    st = torch.load(out / "checkpoint.pt", weights_only=False)
    assert st["w_sched"]["base_lrs"] == [0.01] and st["w_opt"]["param_groups"][0]["initial_lr"] == 0.01
    assert st["w_opt"]["param_groups"][0]["lr"] <= 0.01
    hist = [json.loads(line) for line in (out / "config_history.jsonl").read_text().splitlines()]
    assert hist[-1]["changes"]["search.w_lr"] == {"from": 0.025, "to": 0.01}
    assert json.loads((out / "config.json").read_text())["search"]["w_lr"] == 0.01
    # --overwrite starts again, and the old summary goes with the old run
    (out / "summary.json").write_text(json.dumps({"miou": 0.612}))
    assert main(search(out, table_file, "--overwrite", "--epochs", "1")) == 0
    capsys.readouterr()
    assert json.loads((out / "summary.json").read_text()).get("miou") is None
    assert not (out / "config_history.jsonl").exists()


def test_config_json_repeats_a_run(tmp_path, table_file, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(search(a, table_file, "--latency-weight", "0.2", "--seed", "5")) == 0
    capsys.readouterr()
    assert main(["search", "--config", str(a / "config.json"), "--out", str(b)]) == 0
    capsys.readouterr()
    ca, cb = (json.loads((d / "config.json").read_text()) for d in (a, b))
    assert ca["search"] == cb["search"] and ca["space"] == cb["space"] and ca["data"] == cb["data"]
    assert (a / "genotype.json").read_text() == (b / "genotype.json").read_text()


@pytest.mark.parametrize("extra, msg", [
    (["--steps-per-epoch", "0"], "--steps-per-epoch"),
    (["--batch-size", "5"], "--batch-size"),  # 8 images: halves of 4 give no batch of 5
])
def test_search_without_steps_is_refused(tmp_path, table_file, capsys, extra, msg):
    assert main(search(tmp_path / "r", table_file, *extra)) == 2
    assert msg in _err(capsys)
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_search_resume_without_a_checkpoint_is_refused(tmp_path, table_file, capsys):
    out = tmp_path / "s"
    assert main(search(out, table_file, "--resume")) == 3  # not a silent fresh start
    assert "no checkpoint" in _err(capsys) and not (out / "genotype.json").exists()


def test_search_resume_refuses_a_training_checkpoint(tmp_path, table_file, capsys):
    out = tmp_path / "r"
    out.mkdir()
    torch.save({"model": {}, "spec": {"kind": "gasnet"}}, out / "checkpoint.pt")
    assert main(search(out, table_file, "--resume")) == 2
    assert "not a search checkpoint" in _err(capsys)


@pytest.mark.parametrize("bad", [[("stem", 0.0)], [("op", float("nan"))], [("op", 1e308)], "same"])
def test_latency_tables_the_search_cannot_use(tmp_path, table_file, capsys, bad):
    obj = json.loads(table_file.read_text())
    if bad == "same":
        for e in obj["entries"]:
            e["ms"] = 1.0
    else:
        kind, ms = bad[0]
        next(e for e in obj["entries"] if e["kind"] == kind)["ms"] = ms
    t = tmp_path / "bad.json"
    t.write_text(json.dumps(obj))
    assert main(search(tmp_path / "r", t)) == 2
    err = _err(capsys)
    assert str(t) in err and ("cannot rank" in err if bad == "same" else "finite" in err)


def test_train_refusals(tmp_path, capsys):
    base = ["train", "--genotype", "hand_sep", "--data", "synthetic", "--data-arg", "num_images=4",
            "--data-arg", "size=[32,32]", "--crop", "32", "32", "--epochs", "1", "--batch-size", "2",
            "--head-channels", "8", "--workers", "0", "--no-progress", "--val-split", "none"]
    out = tmp_path / "t"
    # 7. --resume without last.pt is an error, not a silent fresh start
    assert main(base + ["--out", str(out), "--resume"]) == 3
    assert "no checkpoint" in _err(capsys) and not (out / "last.pt").exists()
    assert main(base + ["--out", str(out)]) == 0
    capsys.readouterr()
    best = (out / "best.pt").read_bytes()
    assert main(base + ["--out", str(out), "--epochs", "2"]) == 3  # 1. a re-run does not replace best.pt
    assert "already holds a run" in _err(capsys) and (out / "best.pt").read_bytes() == best
    # a changed lr on resume: refused, then applied with --allow-changes
    assert main(base + ["--out", str(out), "--resume", "--epochs", "2", "--lr", "0.001"]) == 3
    assert "lr" in _err(capsys)
    assert main(base + ["--out", str(out), "--resume", "--epochs", "2", "--lr", "0.001", "--allow-changes"]) == 0
    capsys.readouterr()
    st = torch.load(out / "last.pt", weights_only=False)
    assert st["scheduler"]["base_lrs"] == [0.001] and "lr" in (out / "config_history.jsonl").read_text()
    f = tmp_path / "file"
    f.write_text("x")
    for o in (f, f / "sub"):  # 7. --out a file, or under one
        assert main(base + ["--out", str(o)]) == 2
        assert "--out" in _err(capsys)


def test_export_and_eval_refusals(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    g = ["--genotype", "hand_sep", "--num-classes", "3", "--head-channels", "8"]
    assert main(["export", *g, "--out", str(notes)]) == 2  # 1. never overwrites an unrelated file
    assert "--overwrite" in _err(capsys) and notes.read_text() == "keep me"
    assert main(["export", *g, "--size", "0", "0", "--out", str(tmp_path / "m.onnx")]) == 2
    assert "--size" in _err(capsys)
    for content in (b"", b"garbage!", None):  # 7. empty, garbage, truncated --weights
        w = tmp_path / "w.pt"
        if content is None:
            torch.save({"x": torch.zeros(1000)}, w)
            w.write_bytes(w.read_bytes()[:200])
        else:
            w.write_bytes(content)
        assert main(["export", *g, "--weights", str(w), "--out", str(tmp_path / "m.onnx")]) == 2
        assert str(w) in _err(capsys)


def test_search_refuses_a_table_of_another_backend_unless_asked_for_it(tmp_path, table_file, capsys):
    """A search measures missing entries on the table's own backend; asking for another one is refused with one
    line naming the file and both backends."""
    obj = json.loads(table_file.read_text())
    obj["meta"]["backend"] = "onnxruntime"
    t = tmp_path / "ort.json"
    t.write_text(json.dumps(obj))
    assert main(search(tmp_path / "r", t, "--latency-backend", "torch")) == 2
    err = _err(capsys).strip()
    assert str(t) in err and "'onnxruntime'" in err and "'torch'" in err and "\n" not in err
    assert main(search(tmp_path / "r2", t, "--latency-backend", "onnxruntime")) == 0  # asked for the table's own
    assert json.loads((tmp_path / "r2" / "config.json").read_text())["args"]["latency_backend"] == "onnxruntime"
