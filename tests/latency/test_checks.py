"""A LatencyTable refuses in memory exactly what it refuses on load (issue 26): one set of checks."""

import json
import math

import pytest

from gasgnn import SearchSpace
from gasgnn.latency import MAX_ENTRY_MS, LatencyKey, LatencyTable, LatencyTableError

SPACE = SearchSpace(num_cells=3, num_nodes=2, reduction_cells=(1,), channels=4, input_size=(32, 32), num_classes=9)
GOOD = LatencyKey("sum", (2, 4, 8, 8), "float32", 1)

BAD_VALUES = [0.0, -0.5, math.nan, math.inf, 2 * MAX_ENTRY_MS, "fast", True, None]
BAD_KEYS = [
    LatencyKey("gpu_magic", (1, 2), "float32", 1),       # unknown kind
    LatencyKey("sum", (2, 4, 8), "float32", 1),          # a field short
    LatencyKey("sum", (2, 4.5, 8, 8), "float32", 1),     # not an integer
    LatencyKey("sum", (2, -4, 8, 8), "float32", 1),      # negative
    LatencyKey("op", (3, 4, 1, 8, 8), "float32", 1),     # op name not a string
    LatencyKey("sum", (2, 4, 8, 8), "float32", 0),       # batch 0
    LatencyKey("sum", (2, 4, 8, 8), 32, 1),              # dtype not a name
]


def _file_with(tmp_path, table, entry):
    obj = table.to_dict()
    obj["entries"].append(entry)
    p = tmp_path / "t.json"
    p.write_text(json.dumps(obj))  # NaN/inf are written as JSON's NaN/Infinity, which Python reads back
    return p


def _entry(key, ms):
    from gasgnn.latency import KINDS

    fields = dict(zip(KINDS.get(key.kind, [f"f{i}" for i in range(len(key.params))]), key.params))
    return {"kind": key.kind, **fields, "dtype": key.dtype, "batch": key.batch, "ms": ms}


def _base():
    table = LatencyTable()
    table[LatencyKey("op", ("conv_3x3", 4, 1, 8, 8), "float32", 1)] = 0.3
    return table


@pytest.mark.parametrize("ms", BAD_VALUES, ids=repr)
def test_bad_values_refused_in_memory_and_on_load(tmp_path, ms):
    table = _base()
    with pytest.raises(LatencyTableError):
        table[GOOD] = ms
    assert GOOD not in table
    with pytest.raises(LatencyTableError, match="t.json"):
        LatencyTable.load(_file_with(tmp_path, _base(), _entry(GOOD, ms)))


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
def test_bad_keys_refused_in_memory_and_on_load(tmp_path, key):
    table = _base()
    with pytest.raises(LatencyTableError):
        table[key] = 1.0
    with pytest.raises(LatencyTableError, match="t.json"):
        LatencyTable.load(_file_with(tmp_path, _base(), _entry(key, 1.0)))


def test_ops_that_cannot_be_ranked_refused_in_memory_and_on_load(tmp_path):
    a = LatencyKey("op", ("conv_3x3", 4, 1, 8, 8), "float32", 1)
    b = LatencyKey("op", ("max_pool_3x3", 4, 1, 8, 8), "float32", 1)
    table = LatencyTable()
    table[a] = 0.3
    with pytest.raises(LatencyTableError, match="cannot rank ops"):
        table[b] = 0.3
    table[b] = 0.2
    with pytest.raises(LatencyTableError, match="cannot rank ops"):
        table[b] = 0.3  # overwriting into all-equal
    with pytest.raises(LatencyTableError, match="cannot rank ops"):
        LatencyTable({a: 0.3, b: 0.3})
    with pytest.raises(LatencyTableError, match="cannot rank ops"):
        LatencyTable.load(_file_with(tmp_path, _base(), _entry(b, 0.3)))


def test_every_table_in_memory_reloads(tmp_path):
    """Whatever the checks let in, the file takes back."""
    table = LatencyTable()
    for i, key in enumerate(table.required_keys(SPACE, heads=("aspp",))):
        table[key] = MAX_ENTRY_MS if i == 0 else 1e-4 * (i + 1)
    table.save(tmp_path / "t.json")
    assert LatencyTable.load(tmp_path / "t.json").items() == table.items()
