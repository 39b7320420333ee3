"""Run directories: refusals, the lock, stale temporary files, --overwrite and summary.json (issue 19:
findings 1, 2 and 7)."""

import json
import os
import socket

import pytest

from gasgnn.runner import RunDir, RunDirError, RunLock, check_out_path, claim_run_dir

LOCK_FILE = RunDir.LOCK


def _old_run(d):
    d.mkdir(parents=True, exist_ok=True)
    (d / "best.pt").write_bytes(b"six epochs")
    (d / "summary.json").write_text(json.dumps({"miou": 0.612}))
    return d


def test_refuses_a_directory_holding_another_run(tmp_path):
    d = _old_run(tmp_path / "t2")
    with pytest.raises(RunDirError, match=r"--out .*t2 already holds a run .*--resume.*--overwrite"):
        claim_run_dir(d)
    assert (d / "best.pt").read_bytes() == b"six epochs"  # nothing earlier is lost
    assert not (d / LOCK_FILE).exists()  # the refused run leaves no lock behind
    claim_run_dir(d, resume=True).release()  # a resume may use it
    assert (d / "best.pt").is_file()


def test_overwrite_removes_the_earlier_run_and_its_summary(tmp_path):
    d = _old_run(tmp_path / "run")
    (d / "notes.txt").write_text("mine")
    notes = []
    claim_run_dir(d, overwrite=True, say=notes.append).release()
    assert not (d / "best.pt").exists() and not (d / "summary.json").exists()
    assert (d / "notes.txt").read_text() == "mine"  # only a run's own files go
    assert any("--overwrite" in n for n in notes)


def test_lock_stops_a_second_writer_and_names_the_first(tmp_path):
    d = tmp_path / "run"
    lock = claim_run_dir(d)
    info = json.loads((d / LOCK_FILE).read_text())
    assert info["pid"] == os.getpid() and info["host"] == socket.gethostname() and info["started"]
    with pytest.raises(RunDirError, match=rf"in use by pid {os.getpid()} .*{LOCK_FILE}"):
        claim_run_dir(d, resume=True)
    lock.release()
    claim_run_dir(d, resume=True).release()


def test_stale_lock_is_named_and_replaced(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / LOCK_FILE).write_text(json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname(),
                                            "started": "2020-01-01 00:00:00", "command": "gasgnn search"}))
    notes = []
    lock = claim_run_dir(d, say=notes.append)
    assert any("stale lock" in n and "2020-01-01" in n for n in notes)
    assert json.loads((d / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()
    # A lock from another host cannot be checked: refused, with the file named.
    (d / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "x"}))
    with pytest.raises(RunDirError, match="elsewhere"):
        RunLock(d).acquire()


def test_stray_temp_files_are_cleaned_on_start(tmp_path):
    d = _old_run(tmp_path / "run")
    (d / ".checkpoint.pt.abc123.tmp").write_bytes(b"x" * 100)
    claim_run_dir(d, resume=True).release()
    assert not list(d.glob(".*.tmp")) and (d / "best.pt").is_file()


def test_out_paths_that_cannot_be_written(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="--out .*is a file"):
        check_out_path(f)
    with pytest.raises(ValueError, match="is a file, so nothing can be created under it"):
        check_out_path(f / "sub")
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(ValueError, match="not writable"):
            check_out_path(ro / "run")


def test_summary_keeps_later_numbers_only_for_the_same_genotype(tmp_path):
    run = RunDir(tmp_path)
    run.write_summary({"genotype_sha1": "a", "miou": 0.6})
    run.write_summary({"genotype_sha1": "a", "miou": None}, keep=("miou",))
    assert run.read_summary()["miou"] == 0.6
    run.write_summary({"genotype_sha1": "b", "miou": None}, keep=("miou",))
    assert run.read_summary()["miou"] is None  # the old mIoU described another genotype
