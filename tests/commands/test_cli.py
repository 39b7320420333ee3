import json

import pytest

from gasgnn.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert "gasgnn" in capsys.readouterr().out


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "demo" in capsys.readouterr().out


def test_demo_quick_end_to_end(tmp_path, capsys):
    """The whole pipeline on tiny sizes: table, search, derive, train, eval, bench, figures."""
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--json"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["predicted_latency_ms"] > 0 and summary["measured_latency_ms"] > 0
    assert 0.0 <= summary["miou"] <= 1.0
    for f in ("genotype.json", "latency_table.json", "search/metrics.csv", "search/checkpoint.pt",
              "train/last.pt"):
        assert (out / f).is_file(), f
    assert summary["figures"], "no figures drawn"
    printed = capsys.readouterr().out
    assert json.loads(printed[printed.index("{"):])["miou"] == summary["miou"]


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "g.json"
    bad.write_text('{"format": "gasgnn-genotype", "version": 7, "cells": []}')
    assert main(["bench", "--genotype", str(bad), "--sizes", "32", "32"]) == 2
    err = capsys.readouterr().err
    assert "version" in err and "Traceback" not in err
