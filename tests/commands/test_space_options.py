"""``--space PRESET`` and ``--ops`` (search, latency measure, derive), user ops from a file, ``--plugin``."""

import argparse
import json
import re
from pathlib import Path

import pytest
import torch

from gasgnn import Genotype
from gasgnn.cli import main
from gasgnn.commands._common import add_space_args, space_from_args
from gasgnn.latency import LatencyTable
from gasgnn.space import DARTS_OPS, GAS_OPS

from .conftest import search

REPO = Path(__file__).resolve().parents[2]
THREE = ("skip_connect", "max_pool_3x3", "sep_conv_3x3")


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def _doc_file(tmp_path: Path, name: str) -> Path:
    """The file ``name`` as docs/extending.md gives it (a ```python block whose first line is ``# name``)."""
    text = (REPO / "docs" / "extending.md").read_text()
    (code,) = re.findall(rf"```python\n(# {re.escape(name)}\n.*?)```", text, re.S)
    path = tmp_path / name
    path.write_text(code)
    return path


@pytest.fixture(scope="module")
def three_ops_run(tmp_path_factory, table_file):
    out = tmp_path_factory.mktemp("ops") / "search"
    assert main(search(out, table_file, "--ops", ",".join(THREE))) == 0
    return out


def test_search_with_ops_searches_and_derives_with_those_ops_only(three_ops_run, table_file, tmp_path, capsys):
    g = Genotype.load(three_ops_run / "genotype.json")
    assert g.space.ops == THREE and set(g.ops()) <= set(THREE)
    assert torch.load(three_ops_run / "alpha_history.pt").shape[-1] == 3  # alpha has one column per op
    cfg = json.loads((three_ops_run / "config.json").read_text())
    assert cfg["args"]["ops"] == ",".join(THREE) and cfg["args"]["space"] == "gas"
    # --config repeats it; --resume with other ops is refused (the space is fixed)
    assert main(["search", "--config", str(three_ops_run / "config.json"), "--out", str(tmp_path / "b"),
                 "--no-figures", "--json"]) == 0
    assert Genotype.load(tmp_path / "b" / "genotype.json").space.ops == THREE
    capsys.readouterr()
    assert main(search(tmp_path / "b", table_file, "--ops", "skip_connect,conv_3x3", "--resume")) == 3
    assert "space" in _err(capsys)


def _space(*argv: str):
    p = argparse.ArgumentParser()
    add_space_args(p)
    return space_from_args(p.parse_args(list(argv)))


def test_space_presets_and_field_options_override_them():
    assert _space() == _space("--space", "gas") and _space().ops == GAS_OPS and _space().num_cells == 12
    darts = _space("--space", "darts", "--num-cells", "3")
    assert darts.ops == DARTS_OPS and darts.num_cells == 3 and darts.reduction_cells == (1, 2)
    tiny = _space("--space", "tiny")
    assert (tiny.num_cells, tiny.channels, tiny.input_size) == (4, 8, (64, 96))
    assert _space("--space", "tiny", "--channels", "4").stem_channels == 12  # derived fields follow
    assert _space("--space", "tiny", "--ops", "conv_3x3,none").ops == ("conv_3x3", "none")


@pytest.mark.parametrize("argv,msg", [
    (["--space", "nope"], "--space: unknown preset 'nope'; presets: darts, gas, tiny"),
    (["--ops", "skip_connect,foo"], "--ops: unknown op 'foo'"),
    (["--ops", "conv_3x3,conv_3x3"], "--ops: 'conv_3x3' is listed twice"),
    (["--ops", "none"], "--ops: needs at least one op other than 'none'"),
    (["--ops", "conv_3x3,"], "--ops: empty op name"),
    (["--ops", "no_such_module_xyz:op"], "plugin 'no_such_module_xyz': no module named"),
    (["--space", "tiny", "--num-cells", "0"], "--num-cells: must be a positive integer"),
])
def test_bad_space_options_name_the_flag(argv, msg):
    with pytest.raises(ValueError, match=re.escape(msg)):
        _space(*argv)


def test_bad_space_option_is_one_line_on_the_command_line(tmp_path, table_file, capsys):
    assert main(search(tmp_path / "s", table_file, "--ops", "skip_connect,foo")) == 2
    err = _err(capsys)
    assert err.startswith("gasgnn search: error: --ops: unknown op 'foo'") and err.count("\n") == 1


def test_user_op_from_a_file_is_searchable_with_ops(tmp_path, capsys, clean_registries, monkeypatch):
    my_ops = _doc_file(tmp_path, "my_ops.py")
    out = tmp_path / "s"
    argv = search(out, "-", "--ops", f"skip_connect,sep_conv_3x3,{my_ops}:conv_5x5")
    i = argv.index("--latency-table")
    assert main(argv[:i] + argv[i + 2:]) == 0  # a table of its own, measured now (on this test's one thread)
    g = Genotype.load(out / "genotype.json")
    assert g.space.ops == ("skip_connect", "sep_conv_3x3", "conv_5x5") and set(g.ops()) <= set(g.space.ops)
    assert any(k.params[0] == "conv_5x5" for k, _ in LatencyTable.load(out / "latency_table.json").items()
               if k.kind == "op")  # its latency entries were measured
    # derive with the user op only; --plugin, then $GASGNN_PLUGINS, make its genotypes readable elsewhere
    capsys.readouterr()
    assert main(["--plugin", str(my_ops), "derive", str(out), "--ops", "conv_5x5", "--out", str(tmp_path / "g.json"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ops"] == ["conv_5x5"]
    clean_registries_now(my_ops)
    assert main(["derive", str(out), "--ops", "conv_5x5", "--out", str(tmp_path / "h.json")]) == 2
    assert "unknown op(s) ['conv_5x5']" in _err(capsys)
    monkeypatch.setenv("GASGNN_PLUGINS", str(my_ops))
    assert main(["derive", str(out), "--ops", "conv_5x5", "--out", str(tmp_path / "h.json")]) == 0


def clean_registries_now(path: Path) -> None:
    """Forgets the plugin ``path`` and what it registered (as a fresh process would not have them)."""
    import sys

    from gasgnn import OPS

    OPS.remove("conv_5x5")
    del sys.modules[path.stem]


def test_latency_measure_covers_the_ops_of_space_and_ops(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert main(["latency", "measure", "--space", "tiny", "--ops", "skip_connect,conv_3x3", "--num-cells", "3",
                 "--input-size", "32", "32", "--heads", "aspp", "--repeats", "1", "--warmup", "0", "--no-progress",
                 "--out", str(out)]) == 0
    ops = {k.params[0] for k, _ in LatencyTable.load(out).items() if k.kind == "op"}
    assert ops == {"skip_connect", "conv_3x3"}


def test_derive_with_ops_keeps_to_them(three_ops_run, tmp_path, capsys):
    run = Genotype.load(three_ops_run / "genotype.json")
    out = tmp_path / "g.json"
    assert main(["derive", str(three_ops_run), "--ops", "skip_connect,max_pool_3x3", "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    g = Genotype.load(out)
    assert set(g.ops()) <= {"skip_connect", "max_pool_3x3"} and res["ops"] == sorted(set(g.ops()))
    assert g.space == run.space
    # all of the run's ops: the run's own genotype (the same rule on the same alpha')
    assert main(["derive", str(three_ops_run), "--ops", ",".join(THREE), "--out", str(out), "--overwrite"]) == 0
    assert Genotype.load(out).cells == run.cells
    # with a budget, too (the walk itself: tests/latency/test_budget.py)
    assert main(["derive", str(three_ops_run), "--ops", "skip_connect,sep_conv_3x3", "--target-ms", "1e6",
                 "--out", str(out), "--overwrite"]) == 0
    assert set(Genotype.load(out).ops()) <= {"skip_connect", "sep_conv_3x3"}


@pytest.mark.parametrize("argv,msg", [
    (["--space", "darts"], "--space darts: ['avg_pool_3x3', 'sep_conv_5x5', 'dil_conv_3x3', 'dil_conv_5x5'] are not"),
    (["--ops", "conv_3x3"], "--ops: ['conv_3x3'] are not ops of RUN's space"),
    ([], "give --target-ms (a latency budget), --ops or --space"),
])
def test_derive_refuses_ops_outside_the_run(three_ops_run, tmp_path, capsys, argv, msg):
    assert main(["derive", str(three_ops_run), *argv, "--out", str(tmp_path / "g.json")]) == 2
    assert msg in _err(capsys) and not (tmp_path / "g.json").exists()


def test_plugin_dataset_is_a_data_choice_and_in_roots_help(tmp_path, capsys, clean_registries):
    my_data = _doc_file(tmp_path, "my_data.py")
    with pytest.raises(SystemExit):
        main(["--plugin", str(my_data), "train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "pairs: a folder with train/ and val/" in help_text and "camvid: the SegNet CamVid folder" in help_text
    assert "{camvid,cityscapes,folder,pairs,synthetic}" in help_text


@pytest.mark.parametrize("plugin,msg", [
    ("missing.py", "plugin missing.py: no such file"),
    ("no_such_module_xyz", "plugin 'no_such_module_xyz': no module named 'no_such_module_xyz'"),
])
def test_bad_plugin_is_one_line(plugin, msg, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["--plugin", plugin, "latency", "show", "t.json"]) == 2
    assert msg in _err(capsys)
