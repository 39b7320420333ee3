import json

import networkx as nx
import pytest
import torch

from gasgnn import CellGenotype, Genotype, GenotypeError, SearchSpace, random_genotype
from gasgnn.genotype import parse_darts
from gasgnn.space import BUILDERS, OPS, build_edge_index

DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
    "normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
    "('max_pool_3x3', 1)], reduce_concat=range(2, 6))"
)


@pytest.fixture
def genotype():
    return random_genotype(SearchSpace(num_cells=5), torch.Generator().manual_seed(1))


def test_json_round_trip(genotype, tmp_path):
    assert Genotype.from_json(genotype.to_json()) == genotype
    p = tmp_path / "g.json"
    genotype.save(p)
    assert Genotype.load(p) == genotype
    assert json.loads(p.read_text())["version"] == 1


def test_data_round_trip(genotype):
    data = genotype.to_data()
    assert data.num_nodes == 5 * 6 and data.edge_index.size(1) == 5 * 8
    assert Genotype.from_data(data) == genotype
    assert Genotype.from_json(Genotype.from_data(data).to_json()) == genotype


def test_networkx_round_trip(genotype):
    g = genotype.to_networkx()
    assert isinstance(g, nx.DiGraph) and g.number_of_edges() == 40
    assert nx.is_directed_acyclic_graph(g)
    assert Genotype.from_networkx(g) == genotype
    e = next(iter(g.edges(data=True)))[2]
    assert {"op", "stride", "light", "large_rf", "order"} <= set(e)


def test_darts_round_trip():
    space = SearchSpace(num_cells=8)
    g = Genotype.from_darts(DARTS_V2, space)
    assert g.to_darts() == DARTS_V2
    assert g.cells[0].edges[7] == (2, 5, "dil_conv_3x3")
    assert g.cells[space.reduction_cells[0]].edges[0] == (0, 2, "max_pool_3x3")
    assert Genotype.from_json(g.to_json()) == g


def test_darts_parse_is_safe():
    with pytest.raises(GenotypeError):
        parse_darts("__import__('os').system('echo hi')")
    with pytest.raises(GenotypeError, match="not a literal"):
        parse_darts("Genotype(normal=[(open('x'), 0)], normal_concat=[2], reduce=[], reduce_concat=[])")
    with pytest.raises(GenotypeError, match="unknown field"):
        parse_darts("Genotype(foo=[])")


def test_heterogeneous_to_darts_needs_cell(genotype):
    with pytest.raises(GenotypeError, match="cell=k"):
        genotype.to_darts()
    text = genotype.to_darts(cell=0)
    assert parse_darts(text)["normal"] == [(o, s) for s, _, o in genotype.cells[0].edges]


def _bad(mutate):
    obj = random_genotype(SearchSpace(num_cells=3)).to_dict()
    mutate(obj)
    return json.dumps(obj)


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda o: o.update(version=99), "version"),
        (lambda o: o.pop("cells"), "missing field 'cells'"),
        (lambda o: o["cells"][1]["edges"][0].update(op="warp_drive"), r"cells\[1\].edges\[0\].op: unknown op"),
        (lambda o: o["cells"][0]["edges"][0].update(src=5), r"cells\[0\].edges\[0\].src"),
        (lambda o: o["cells"][2].pop("channels"), r"cells\[2\]: missing field 'channels'"),
        (lambda o: o["cells"][0]["edges"][1].pop("dst"), r"cells\[0\].edges\[1\]: missing field 'dst'"),
        (lambda o: o["cells"][0].update(reduction="yes"), r"cells\[0\].reduction"),
        (lambda o: o["space"].update(num_cells=4), "4"),
    ],
)
def test_malformed_json(mutate, match):
    with pytest.raises(GenotypeError, match=match):
        Genotype.from_json(_bad(mutate))
    assert issubclass(GenotypeError, ValueError)


def test_malformed_file_named(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        Genotype.load(p)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        Genotype.load(tmp_path / "missing.json")


def test_cell_validation():
    with pytest.raises(GenotypeError, match="no incoming edge"):
        Genotype((CellGenotype(((0, 2, "conv_3x3"),), False, 8, num_nodes=2),))
    with pytest.raises(GenotypeError, match="'none' cannot"):
        Genotype((CellGenotype(((0, 2, "none"),), False, 8, num_nodes=1),))


def test_builders_on_three_cells():
    s = SearchSpace(num_cells=3, num_nodes=2)  # E = 5
    adj = build_edge_index("adjacent", s)
    assert adj.size(1) == 2 * 25
    assert set(map(tuple, adj.t().tolist())) == {(i, j) for c in (0, 1) for i in range(5 * c, 5 * c + 5)
                                                 for j in range(5 * c + 5, 5 * c + 10)}
    al = build_edge_index("aligned", s)
    assert al.t().tolist() == [[i, i + 5] for i in range(10)]
    ap = build_edge_index("all_previous", s)
    assert ap.size(1) == 25 + 50
    assert {"adjacent", "aligned", "all_previous"} <= set(BUILDERS)
    with pytest.raises(KeyError, match="unknown ArchGraph builder"):
        build_edge_index("nope", s)


def test_data_keys_are_not_shifted_by_batching(genotype):
    from torch_geometric.data import Batch

    data = genotype.to_data()
    assert not [k for k in data.keys() if k != "edge_index" and ("index" in k or "face" in k)]
    batch = Batch.from_data_list([data, data])
    assert batch.node_pos.tolist() == data.node_pos.tolist() * 2
    assert [Genotype.from_data(d) for d in batch.to_data_list()] == [genotype, genotype]


def test_data_of_the_older_layout_still_reads(genotype):
    data = genotype.to_data()
    data.node_index = data.node_pos
    del data.node_pos
    data.space = genotype.space.to_dict()
    del data.space_json
    assert Genotype.from_data(data) == genotype


def test_multi_edges_round_trip_everywhere():
    # NASNet's kind: a parameter-free op twice on one input (and two different ops from one input)
    cell = CellGenotype(((0, 2, "max_pool_3x3"), (0, 2, "max_pool_3x3"), (0, 2, "sep_conv_3x3"),
                         (1, 3, "skip_connect"), (2, 3, "conv_3x3")), False, 8, num_nodes=2)
    g = Genotype((cell,))
    assert g.has_multi_edges()
    assert Genotype.from_json(g.to_json()) == g
    assert Genotype.from_data(g.to_data()) == g
    nxg = g.to_networkx()
    assert isinstance(nxg, nx.MultiDiGraph) and Genotype.from_networkx(nxg) == g
    assert not isinstance(random_genotype(SearchSpace(num_cells=2)).to_networkx(), nx.MultiDiGraph)


def test_genotype_nonsense_is_refused_naming_the_field():
    g = random_genotype(SearchSpace(num_cells=2)).to_dict()
    bad = json.loads(json.dumps(g))
    bad["space"]["num_classes"] = 1.5
    with pytest.raises(GenotypeError, match=r"genotype.space: SearchSpace.num_classes: must be an integer, got 1.5"):
        Genotype.from_dict(bad)
    bad = json.loads(json.dumps(g))
    bad["space"]["input_size"] = [64, True]
    with pytest.raises(GenotypeError, match="input_size: must be a list of integers"):
        Genotype.from_dict(bad)
    bad = json.loads(json.dumps(g))
    e = bad["cells"][1]["edges"][0]
    e["op"] = "conv_3x3"
    assert OPS["conv_3x3"].parametric
    bad["cells"][1]["edges"].append(dict(e))  # 9 edges: one written twice
    with pytest.raises(GenotypeError, match=r"cells\[1\].edges: .* appear more than once"):
        Genotype.from_dict(bad)
    bad = json.loads(json.dumps(g))
    bad["cells"][0]["concat"] = []
    with pytest.raises(GenotypeError, match=r"cells\[0\].concat: is empty"):
        Genotype.from_dict(bad)
    del bad["cells"][0]["concat"]  # left out: all intermediate nodes
    assert Genotype.from_dict(bad).cells[0].concat == (2, 3, 4, 5)
