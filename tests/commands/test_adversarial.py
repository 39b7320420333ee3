"""Issue 27: every bad input gets one line naming the flag, file or field, with the exit code of its kind
(2 bad input, 3 refused or diverged run, 1 a write failed), and nothing done earlier is lost. One test per
numbered finding of the issue."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gasgnn.cli import main
from gasgnn.runner import RunDir, RunLock, load_run

from .conftest import search

REPO = Path(__file__).resolve().parents[2]


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Original Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1, err  # one line
    return lines[0]


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in d.iterdir() if p.is_file() and not p.name.startswith(".")}


def _train(out, *extra, data=("--data", "synthetic", "--data-arg", "num_images=4", "--data-arg", "size=[32,32]")):
    return ["train", "--genotype", "hand_sep", *data, "--crop", "32", "32", "--epochs", "1", "--batch-size", "2",
            "--head-channels", "8", "--workers", "0", "--no-progress", "--out", str(out), *extra]


# 1. divergence: one line and exit 3, not a SearchDivergedError traceback
def test_1_divergence_is_one_line_and_exit_3(tmp_path, table_file, capsys):
    out = tmp_path / "nan"
    code = main(search(out, table_file, "--w-lr", "1e35", "--grad-clip", "1e38", "--epochs", "2",
                       "--warmup-epochs", "0", "--steps-per-epoch", "3"))
    assert code == 3
    line = _err(capsys)
    assert "became" in line and "stopped" in line and ("--overwrite" in line or "--resume" in line)


# 2. --deterministic does not let the machine's load choose the thread count; a resume under another
# thread count is a changed setting
def test_2_deterministic_runs_do_not_depend_on_load(tmp_path, table_file, capsys, monkeypatch):
    import gasgnn.utils as utils

    runs = []
    for busy in (0.0, 1.6):  # an idle machine, then one with another job on it: auto would pick 2, then 1
        monkeypatch.setattr(utils, "busy_cores", lambda interval=0.3, b=busy: b)
        out = tmp_path / f"busy{busy}"
        assert main(search(out, table_file, "--deterministic", "--threads", "auto", "--seed", "3")) == 0
        runs.append(out)
    capsys.readouterr()
    cfgs = [json.loads((r / RunDir.CONFIG).read_text()) for r in runs]
    assert cfgs[0]["threads"] == cfgs[1]["threads"] == os.cpu_count()
    assert cfgs[0]["args"]["threads"] == os.cpu_count()  # the number used, not "auto"
    assert (runs[0] / RunDir.GENOTYPE).read_text() == (runs[1] / RunDir.GENOTYPE).read_text()


def test_2_resume_under_another_thread_count_is_a_change(tmp_path, table_file, capsys):
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs two cores")
    out = tmp_path / "t"
    assert main(search(out, table_file, "--threads", "1")) == 0
    st = torch.load(out / RunDir.CHECKPOINT, weights_only=False)
    assert st["settings"]["threads"] == 1
    capsys.readouterr()
    assert main(search(out, table_file, "--threads", "2", "--resume", "--epochs", "3")) == 3
    assert "threads: 1 -> 2" in _err(capsys)
    assert main(search(out, table_file, "--threads", "2", "--resume", "--epochs", "3", "--allow-changes")) == 0


# 3. a full disk: one line naming the file, exit 1, the previous checkpoint kept and resumable
def test_3_full_disk_names_the_file_and_keeps_the_checkpoint(tmp_path, table_file):
    out = tmp_path / "disk"
    assert main(search(out, table_file, "--epochs", "1")) == 0
    before = (out / RunDir.CHECKPOINT).read_bytes()
    limit = len(before) // 2  # small files still fit; the next checkpoint does not
    code = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
            "from gasgnn.cli import main; sys.exit(main(sys.argv[1:]))")
    argv = search(out, table_file, "--epochs", "2", "--resume", "--allow-changes")
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=REPO,
                       env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert r.returncode == 1, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "error:" in ln]
    assert len(lines) == 1 and "Traceback" not in r.stderr and str(out / RunDir.CHECKPOINT) in lines[0]
    assert (out / RunDir.CHECKPOINT).read_bytes() == before
    assert not list(out.glob(".*.tmp"))
    assert main(argv) == 0  # the disk has room again: the same command resumes


# 4. config values are checked like flags
@pytest.mark.parametrize("value, what", [(1.5, "an integer"), (True, "an integer"), ("x", "a value for --epochs")])
def test_4_config_values_are_type_checked(tmp_path, table_file, capsys, value, what):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"epochs": value}))
    assert main(search(tmp_path / "r", table_file, "--config", str(cfg))) == 2
    line = _err(capsys)
    assert str(cfg) in line and "'epochs'" in line and what in line
    assert not (tmp_path / "r").exists()


# 5. run files resume can rebuild are rebuilt, even on a finished run
def test_5_resume_repairs_torn_run_files(tmp_path, table_file, capsys):
    out = tmp_path / "torn"
    assert main(search(out, table_file)) == 0
    good = {n: (out / n).read_bytes() for n in (RunDir.METRICS, RunDir.GENOTYPE)}
    alpha = torch.load(out / RunDir.ALPHA_HISTORY)
    for n in (RunDir.SUMMARY, RunDir.METRICS, RunDir.ALPHA_HISTORY):
        p = out / n
        p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])  # killed mid-write by something else
    assert main(search(out, table_file, "--resume")) == 0
    capsys.readouterr()
    for n, data in good.items():
        assert (out / n).read_bytes() == data, n
    assert torch.equal(torch.load(out / RunDir.ALPHA_HISTORY), alpha)
    assert json.loads((out / RunDir.SUMMARY).read_text())["epochs"] == 2
    run = load_run(out)  # viz and derive read it again
    assert run.alpha_history.shape[0] == 2 and len(run.metrics["epoch"]) == 2


# 6. a lock file that is not a lock record
def test_6_foreign_lock_content_is_replaced_with_a_note(tmp_path, table_file, capsys):
    out = tmp_path / "lock"
    out.mkdir()
    (out / RunDir.LOCK).write_text("[1, 2, 3]")
    lock = RunLock(out).acquire()
    assert lock.notes and "unreadable lock" in lock.notes[0]
    lock.release()
    (out / RunDir.LOCK).write_text("[1, 2, 3]")
    assert main(search(out, table_file)) == 0


# 7. genotype nonsense: one line naming the field, nothing written
def test_7_genotype_nonsense_names_the_field(tmp_path, capsys):
    from gasgnn import SearchSpace, random_genotype

    g = random_genotype(SearchSpace(num_cells=3, channels=8, input_size=(32, 32))).to_dict()
    g["space"]["num_classes"] = 1.5
    bad = tmp_path / "g.json"
    bad.write_text(json.dumps(g))
    onnx = tmp_path / "m.onnx"
    for argv in (["export", "--genotype", str(bad), "--out", str(onnx)], ["bench", "--genotype", str(bad)],
                 ["viz", str(bad)]):
        assert main(argv) == 2, argv
        assert "num_classes" in _err(capsys)
    assert not onnx.exists()


# 8. sizes that cannot fit: refused before allocating, naming the flag
def test_8_sizes_that_cannot_fit_are_refused(tmp_path, table_file, capsys):
    from gasgnn import SearchSpace, random_genotype

    onnx = tmp_path / "m.onnx"
    assert main(["export", "--genotype", "hand_sep", "--size", "100000", "100000", "--out", str(onnx)]) == 2
    assert "--size" in _err(capsys) and not (tmp_path / "m.onnx").exists()
    assert main(search(tmp_path / "s", table_file, "--input-size", "100000", "100000")) == 2
    assert "--input-size" in _err(capsys) and not (tmp_path / "s").exists()
    g = random_genotype(SearchSpace(num_cells=3, channels=8)).to_dict()
    g["space"] = None
    for c in g["cells"]:
        c["channels"] = 100000
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps(g))
    assert main(["bench", "--genotype", str(huge), "--sizes", "32", "32"]) == 2
    assert str(huge) in _err(capsys)


# 9. errors in loader workers keep the dataset's own message; a failed validation keeps the trained epoch
def _folder(tmp_path, bad_split):
    from gasgnn.testing import make_folder_tree

    root = tmp_path / "data"
    for split in ("train", "val"):
        make_folder_tree(root / split, n=4, size=(32, 32))
    mask = sorted((root / bad_split / "masks").iterdir())[0]
    mask.write_bytes(b"")  # a zero-byte mask
    return root, mask


def test_9_worker_errors_are_the_datasets_message(tmp_path, capsys):
    root, mask = _folder(tmp_path, "train")
    out = tmp_path / "t"
    argv = _train(out, "--workers", "1", "--val-split", "none", data=("--data", "folder", "--root", str(root)))
    assert main(argv) == 2
    line = _err(capsys)
    assert str(mask) in line and "DataLoader worker" not in line


def test_9_failed_validation_keeps_the_epochs_checkpoint(tmp_path, capsys):
    root, mask = _folder(tmp_path, "val")
    out = tmp_path / "t"
    assert main(_train(out, "--workers", "1", data=("--data", "folder", "--root", str(root)))) == 2
    assert str(mask) in _err(capsys)
    st = torch.load(out / RunDir.LAST, weights_only=False)
    assert st["epoch"] == 1 and st["iteration"] == 2  # the trained epoch survives


# 10. more threads than cores
def test_10_threads_above_the_cores_are_refused(tmp_path, table_file, capsys):
    assert main(search(tmp_path / "r", table_file, "--threads", "999")) == 2
    assert "--threads 999" in _err(capsys) and not (tmp_path / "r").exists()


# 11. a bad $GASGNN_OMP_WAIT is named
def test_11_bad_omp_wait_environment_is_named(tmp_path, table_file, capsys, monkeypatch):
    monkeypatch.setenv("GASGNN_OMP_WAIT", "bogus")
    assert main(search(tmp_path / "r", table_file)) == 2
    assert "GASGNN_OMP_WAIT" in _err(capsys)


# 12. derive refuses an infinite budget
def test_12_derive_refuses_infinite_target(tmp_path, table_file, capsys):
    run = tmp_path / "run"
    assert main(search(run, table_file)) == 0
    capsys.readouterr()
    assert main(["derive", str(run), "--target-ms", "inf", "--out", str(tmp_path / "g.json")]) == 2
    assert "--target-ms" in _err(capsys) and not (tmp_path / "g.json").exists()


# 13. a training that diverges before its first checkpoint says how to start again
def test_13_divergence_before_a_checkpoint_advises_overwrite(tmp_path, capsys):
    out = tmp_path / "t"
    assert main(_train(out, "--lr", "1e12", "--warmup-iters", "0", "--val-split", "none")) == 3
    line = _err(capsys)
    assert "no checkpoint was written yet" in line and "--overwrite" in line and "--allow-changes" not in line
    assert main(_train(out, "--overwrite", "--val-split", "none")) == 0  # as advised


# 14. a refused run leaves no --out behind
@pytest.mark.parametrize("extra, flag", [(["--steps-per-epoch", "0"], "--steps-per-epoch"),
                                         (["--batch-size", "0"], "--batch-size"), (["--epochs", "-1"], "epochs")])
def test_14_refused_search_leaves_no_out_directory(tmp_path, table_file, capsys, extra, flag):
    out = tmp_path / "r"
    assert main(search(out, table_file, *extra)) == 2
    assert flag in _err(capsys) and not out.exists()


@pytest.mark.parametrize("extra, flag", [(["--batch-size", "0"], "batch_size"), (["--epochs", "-1"], "epochs")])
def test_14_refused_training_leaves_no_out_directory(tmp_path, capsys, extra, flag):
    out = tmp_path / "t"
    assert main(_train(out, *extra)) == 2
    assert flag in _err(capsys) and not out.exists()
