"""Fixtures of the search tests: a 3-cell space and a quickly measured latency table for it."""

import pytest

from gasgnn import SearchSpace
from gasgnn.latency import LatencyTable


@pytest.fixture(scope="module")
def space():
    return SearchSpace(num_cells=3, num_nodes=2, reduction_cells=(1,), channels=4, input_size=(32, 32), num_classes=9)


@pytest.fixture(scope="module")
def table(space):
    return LatencyTable.measure(space, repeats=2, warmup=1, progress=False, heads=("aspp",))
