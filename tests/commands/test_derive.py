"""``gasgnn derive``: a finished search's network under a latency budget, and its refusals."""

import json

import pytest

from gasgnn import Genotype
from gasgnn.cli import main
from gasgnn.latency import LatencyTable, lightest

from .conftest import search


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, table_file):
    out = tmp_path_factory.mktemp("derive") / "search"
    assert main(search(out, table_file)) == 0
    return out


def _err(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_derive_fits_the_budget_and_keeps_the_inputs(run_dir, table_file, tmp_path, capsys):
    table = LatencyTable.load(table_file)
    for k, _ in table.items():  # fixed op costs (convs dearest, skip cheapest): no timing noise in what is cut
        if k.kind == "op":
            table[k] = {"skip_connect": 0.01, "max_pool_3x3": 0.2}.get(k.params[0], 1.0) * k.params[2]
    table.save(tmp_path / "fixed.json")
    start = Genotype.load(run_dir / "genotype.json")
    before, floor = table.predict(start), lightest(start, table)
    target = 0.5 * (before + floor)
    capsys.readouterr()
    out = tmp_path / "g.json"
    assert main(["derive", str(run_dir), "--target-ms", f"{target}", "--out", str(out), "--json",
                 "--table", str(tmp_path / "fixed.json")]) == 0
    res = json.loads(capsys.readouterr().out)
    g = Genotype.load(out)
    assert res["predicted_ms"] == pytest.approx(table.predict(g)) and table.predict(g) <= target
    assert res["before_ms"] == pytest.approx(before) and res["changed_edges"] > 0
    assert [(s, d) for c in g.cells for s, d, _ in c.edges] == [(s, d) for c in start.cells for s, d, _ in c.edges]
    # a second run does not replace the file unless asked
    data = out.read_bytes()
    assert main(["derive", str(run_dir), "--target-ms", "1e6", "--out", str(out)]) == 2
    assert "--overwrite" in _err(capsys) and out.read_bytes() == data
    assert main(["derive", str(run_dir), "--target-ms", "1e6", "--out", str(out), "--overwrite"]) == 0
    assert Genotype.load(out).cells == start.cells  # already under the target (RUN's own table): unchanged


def test_derive_refuses_what_it_cannot_do(run_dir, table_file, tmp_path, capsys):
    start = Genotype.load(run_dir / "genotype.json")
    out = tmp_path / "g.json"
    assert main(["derive", str(tmp_path / "nope"), "--target-ms", "5", "--out", str(out)]) == 2
    assert "is not a directory" in _err(capsys)
    assert main(["derive", str(run_dir), "--target-ms", "0.001", "--out", str(out)]) == 2
    assert "lightest network" in _err(capsys) and not out.exists()
    assert main(["derive", str(run_dir), "--target-ms", "-1", "--out", str(out)]) == 2
    assert "--target-ms" in _err(capsys)
    bare = tmp_path / "bare"
    bare.mkdir()
    start.save(bare / "genotype.json")
    assert main(["derive", str(bare), "--target-ms", "5", "--out", str(out)]) == 2
    assert "alpha_history.pt" in _err(capsys)
    (bare / "alpha_history.pt").write_text("not a tensor")
    assert main(["derive", str(bare), "--target-ms", "5", "--out", str(out), "--table", str(table_file)]) == 2
    assert "alpha_history.pt: cannot read" in _err(capsys)
    missing = str(tmp_path / "t.json")
    assert main(["derive", str(run_dir), "--target-ms", "5", "--out", str(out), "--table", missing]) == 2
    assert "--table" in _err(capsys) and not out.exists()
