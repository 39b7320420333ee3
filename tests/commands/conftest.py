"""Fixtures of the command tests: a 3-cell space, its latency table file, and a tiny search command."""

import pytest

from gasgnn import SearchSpace
from gasgnn.latency import LatencyTable

SPACE = SearchSpace(num_cells=3, num_nodes=2, reduction_cells=(1,), channels=4, input_size=(32, 32), num_classes=9)


@pytest.fixture(scope="module")
def table_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("t") / "table.json"
    LatencyTable.measure(SPACE, repeats=2, warmup=1, progress=False, heads=("aspp",)).save(p)
    return p


def search(out, table_file, *extra):
    return ["search", "--data", "synthetic", "--data-arg", "num_images=8", "--num-cells", "3", "--num-nodes", "2",
            "--reduction-cells", "1", "--channels", "4", "--input-size", "32", "32", "--num-classes", "9",
            "--epochs", "2", "--warmup-epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2",
            "--latency-table", str(table_file), "--out", str(out), "--no-figures", "--json", *extra]
