"""docs/extending.md as written: each section's file, then its commands, and what they must produce.

Every section has one Python block that is a whole file (its first line ``# NAME.py``) and a bash block
of ``gasgnn ...`` / ``python -c ...`` lines. The fast tests run the files and check what they register;
the slow test also runs each section's commands, in-process for ``gasgnn`` (``gasgnn.cli.main``).
"""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from gasgnn import OPS, Genotype
from gasgnn.cli import main
from gasgnn.data import DATASETS, build_dataset, dataset_fixture, eval_transform
from gasgnn.registry import load_plugin

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "extending.md"


def sections() -> dict[str, tuple[str, str, list[str]]]:
    """Section title -> (file name, file text, command lines) of docs/extending.md."""
    out = {}
    for part in re.split(r"^## ", DOC.read_text(), flags=re.M)[1:]:
        title = part.splitlines()[0].strip()
        files = re.findall(r"```python\n(# (\S+\.py)\n.*?)```", part, re.S)
        assert len(files) == 1, f"section '{title}': expected one file block, found {len(files)}"
        (text, name), = files
        commands = []
        for block in re.findall(r"```bash\n(.*?)```", part, re.S):
            commands += [c.strip() for c in block.replace("\\\n", " ").splitlines() if c.strip()]
        out[title] = (name, text, commands)
    return out


SECTIONS = sections()


def test_three_sections_each_one_file_and_commands():
    assert list(SECTIONS) == ["A new candidate op", "A new guide GNN", "A new dataset"]
    for name, _, commands in SECTIONS.values():
        assert commands and all(c.split()[0] in ("gasgnn", "python") for c in commands)
        assert any(name in c for c in commands), f"the commands do not use {name}"


def _write(section: str, where: Path) -> Path:
    name, text, _ = SECTIONS[section]
    path = where / name
    path.write_text(text)
    return path


def test_op_file_registers_one_op_with_label_and_batch(tmp_path, clean_registries):
    load_plugin(str(_write("A new candidate op", tmp_path)))
    spec = OPS["conv_5x5"]
    assert spec.short_label == "conv5" and spec.batch is not None and spec.receptive_field == 5


def test_dataset_file_registers_its_fixture_and_root_help(tmp_path, clean_registries):
    load_plugin(str(_write("A new dataset", tmp_path)))
    assert "pairs" in DATASETS and "train/" in DATASETS.meta("pairs")["root_help"]
    root = dataset_fixture("pairs")(tmp_path / "data")  # what tests/test_registry.py does for every dataset
    ds = build_dataset("pairs", root=root, split="val", transform=eval_transform())
    image, mask = ds[0]
    assert len(ds) == 6 and ds.num_classes == 3 and image.shape[1:] == mask.shape
    assert set(mask.unique().tolist()) <= {0, 1, 2, 255}


def _run(line: str, cwd: Path) -> None:
    argv = shlex.split(line)
    if argv[0] == "gasgnn":
        assert main(argv[1:]) == 0, line
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(cwd)])}
    subprocess.run([sys.executable, *argv[1:]], cwd=cwd, env=env, check=True)


@pytest.mark.slow
@pytest.mark.parametrize("section", list(SECTIONS))
def test_section_runs_as_written(section, tmp_path, monkeypatch, clean_registries, capsys):
    monkeypatch.chdir(tmp_path)
    _write(section, tmp_path)
    for line in SECTIONS[section][2]:
        _run(line, tmp_path)
    capsys.readouterr()
    if section == "A new candidate op":
        run = Genotype.load(tmp_path / "runs/conv5/genotype.json")
        assert run.space.ops == ("skip_connect", "max_pool_3x3", "sep_conv_3x3", "conv_5x5")
        assert set(run.ops()) <= set(run.space.ops)
        table = json.loads((tmp_path / "runs/conv5/latency_table.json").read_text())
        assert {e["op"] for e in table["entries"] if e["kind"] == "op"} == set(run.space.ops)
        only = Genotype.load(tmp_path / "conv5_only.json")
        assert set(only.ops()) <= {"skip_connect", "conv_5x5"}
        assert (tmp_path / "runs/conv5/figures/network.png").is_file()
        assert (tmp_path / "runs/conv5_train/last.pt").is_file()
    elif section == "A new guide GNN":
        cfg = json.loads((tmp_path / "runs/maxconv/config.json").read_text())
        assert cfg["search"]["guide"] == "my_gnn:MaxConv"
    else:
        assert Genotype.load(tmp_path / "runs/pairs/genotype.json").space.num_classes == 3
        assert (tmp_path / "runs/pairs_train/best.pt").is_file()
