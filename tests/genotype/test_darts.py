"""The DARTS family: the 15 Genotype(...) literals of darts, PC-DARTS and P-DARTS import, export back to
the same DARTS text and build a GASNet that runs."""

import re
from pathlib import Path

import networkx as nx
import pytest
import torch

from gasgnn import Genotype, GenotypeError, SearchSpace
from gasgnn.genotype import darts_space, parse_darts
from gasgnn.models import GASNet
from gasgnn.space import DARTS_OPS, OPS, preset_space

DATA = Path(__file__).parent / "darts_genotypes.txt"


def _literals() -> list[tuple[str, str, str]]:
    out, source, name, lines = [], None, None, []
    for line in DATA.read_text().splitlines() + ["## end"]:
        m = re.match(r"^(\w+) = (Genotype\(.*)$", line)
        if (m or line.startswith("## ")) and name is not None:
            out.append((source, name, "\n".join(lines).strip()))
            name, lines = None, []
        if line.startswith("## "):
            source = line[3:].split()[0]
        elif m:
            name, lines = m.group(1), [m.group(2)]
        elif name is not None:
            lines.append(line)
    return out


LITERALS = _literals()


def _canonical(text: str) -> str:
    """The DARTS text in one spelling (written here independently of gasgnn's exporter)."""
    f = parse_darts(text)

    def cc(c: list[int]) -> str:
        return f"range({c[0]}, {c[-1] + 1})" if c == list(range(c[0], c[-1] + 1)) else repr(c)

    def pairs(p: list) -> str:
        return "[" + ", ".join(f"('{o}', {s})" for o, s in p) + "]"

    return (f"Genotype(normal={pairs(f['normal'])}, normal_concat={cc(f['normal_concat'])}, "
            f"reduce={pairs(f['reduce'])}, reduce_concat={cc(f['reduce_concat'])})")


def _tiny(text: str) -> SearchSpace:
    return darts_space(text, num_cells=3, channels=4, stem_channels=8, input_size=(32, 32), num_classes=3)


def test_data_file_holds_the_15_literals():
    assert len(LITERALS) == 15
    assert {s for s, _, _ in LITERALS} == {"quark0/darts", "yuhuixu1993/PC-DARTS", "chenxin061/pdarts"}
    names = {n for _, n, _ in LITERALS}
    assert {"NASNet", "AmoebaNet", "DARTS_V1", "DARTS_V2", "PC_DARTS_cifar", "PC_DARTS_image", "PDARTS"} == names


@pytest.mark.parametrize("source,name,text", LITERALS, ids=[f"{s}:{n}" for s, n, _ in LITERALS])
def test_literal_imports_exports_and_runs(source, name, text):
    space = _tiny(text)
    g = Genotype.from_darts(text, space)
    exported = g.to_darts()
    assert parse_darts(exported) == parse_darts(text)  # same ops, inputs, order and concat
    assert exported == _canonical(text)
    # Every representation keeps multi-edges and their order.
    assert Genotype.from_json(g.to_json()) == g
    assert Genotype.from_data(g.to_data()) == g
    assert Genotype.from_networkx(g.to_networkx()) == g
    torch.manual_seed(0)
    net = GASNet(g, head="simple", head_channels=8).eval()
    with torch.no_grad():
        y = net(torch.randn(1, 3, 32, 32))
    assert y.shape == (1, 3, 32, 32) and torch.isfinite(y).all()
    assert sum(len(c.ops) for c in net.cells) == sum(len(c.edges) for c in g.cells)


def test_darts_ops_registered_with_metadata():
    assert set(DARTS_OPS) <= set(OPS)
    assert preset_space("darts").ops == DARTS_OPS
    assert OPS["avg_pool_3x3"].light and not OPS["avg_pool_3x3"].parametric
    assert OPS["dil_conv_5x5"].dilation == 2 and OPS["dil_conv_5x5"].receptive_field == 9
    assert OPS["sep_conv_7x7"].receptive_field == 13 and not OPS["sep_conv_7x7"].light
    assert OPS["conv_7x1_1x7"].receptive_field == 7


def test_multi_edges_survive_everywhere():
    text = dict((n, t) for _, n, t in LITERALS)["NASNet"]
    g = Genotype.from_darts(text, _tiny(text))
    assert g.has_multi_edges()
    assert g.cells[0].edges[6:8] == ((0, 5, "avg_pool_3x3"), (0, 5, "avg_pool_3x3"))
    nxg = g.to_networkx()
    assert isinstance(nxg, nx.MultiDiGraph) and nxg.number_of_edges((0, 0), (0, 5)) == 2
    data = g.to_data()
    assert data.edge_index.size(1) == sum(len(c.edges) for c in g.cells)
    with pytest.raises(GenotypeError, match="multi-edges"):
        g.to_networkx(multigraph=False)


def test_from_darts_checks_ops_against_the_space():
    text = dict((n, t) for _, n, t in LITERALS)["DARTS_V2"]
    space = SearchSpace(num_cells=3, ops=("none", "conv_3x3"), input_size=(32, 32))
    with pytest.raises(GenotypeError) as e:
        Genotype.from_darts(text, space)
    msg = str(e.value)
    # Every offending op at once, named by DARTS cell.
    for part in ("normal[0] 'sep_conv_3x3'", "normal[7] 'dil_conv_3x3'", "reduce[0] 'max_pool_3x3'",
                 "reduce[2] 'skip_connect'"):
        assert part in msg


def test_unknown_ops_listed_at_once_by_darts_cell():
    text = ("Genotype(normal=[('warp_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=[2], "
            "reduce=[('max_pool_3x3', 0), ('teleport', 1)], reduce_concat=[2])")
    with pytest.raises(GenotypeError) as e:
        Genotype.from_darts(text, preset_space("darts", num_cells=3, num_nodes=1, input_size=(32, 32)))
    assert "normal[0] 'warp_3x3'" in str(e.value) and "reduce[1] 'teleport'" in str(e.value)


def test_genotype_validation_lists_every_unknown_op():
    text = dict((n, t) for _, n, t in LITERALS)["DARTS_V2"]
    obj = Genotype.from_darts(text, _tiny(text)).to_dict()
    obj["cells"][0]["edges"][1]["op"] = "warp"
    obj["cells"][2]["edges"][3]["op"] = "drive"
    with pytest.raises(GenotypeError, match=r"cells\[0\].edges\[1\].op: unknown op 'warp'.*cells\[2\].edges\[3\]"):
        Genotype.from_dict(obj)


def test_from_darts_names_the_cell_on_bad_shapes():
    bad = "Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=[2], reduce=[], reduce_concat=[])"
    with pytest.raises(GenotypeError, match="'normal' has 1"):
        Genotype.from_darts(bad, preset_space("darts", num_cells=3, input_size=(32, 32)))
    later = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 2)], normal_concat=[2], reduce=[], "
             "reduce_concat=[])")
    with pytest.raises(GenotypeError, match=r"normal\[1\]"):
        Genotype.from_darts(later, preset_space("darts", num_cells=1, num_nodes=1, reduction_cells=()))


def test_derive_can_take_two_ops_from_one_input():
    from gasgnn import derive

    s = preset_space("darts", num_cells=2, num_nodes=2, reduction_cells=(1,), input_size=(32, 32))
    ops = list(s.ops)
    alpha = torch.zeros(s.num_arch_nodes, s.num_ops)
    alpha[0, ops.index("sep_conv_5x5")] = 3.0  # cell 0, edge (0,2): two strong ops on one input
    alpha[0, ops.index("avg_pool_3x3")] = 2.5
    alpha[1, ops.index("dil_conv_3x3")] = 1.0
    g = derive(s, alpha, distinct_inputs=False)
    assert g.cells[0].edges[:2] == ((0, 2, "avg_pool_3x3"), (0, 2, "sep_conv_5x5"))
    assert g.has_multi_edges()
    assert derive(s, alpha).cells[0].edges[:2] == ((0, 2, "sep_conv_5x5"), (1, 2, "dil_conv_3x3"))
    net = GASNet(g, head="simple", head_channels=8).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 32, 32)).shape == (1, s.num_classes, 32, 32)


def test_drawing_separates_multi_edges():
    from matplotlib.patches import FancyArrowPatch

    from gasgnn.viz import draw_cell

    text = dict((n, t) for _, n, t in LITERALS)["NASNet"]
    g = Genotype.from_darts(text, _tiny(text))
    fig = draw_cell(g, 0)
    ax = fig.axes[0]
    arrows = [a for a in ax.patches if isinstance(a, FancyArrowPatch)]
    assert len(arrows) == len(g.cells[0].edges) + len(g.cells[0].concat)
    # Edges 6 and 7 are both avg_pool 0 -> 5: they must be drawn on different arcs.
    styles = [a.get_connectionstyle() for a in arrows]
    assert styles[6].rad != styles[7].rad
    # The plainest case: one node, two ops from input 0 (both would take the straight arc).
    from gasgnn.genotype import CellGenotype

    cell = CellGenotype(((0, 2, "sep_conv_3x3"), (0, 2, "avg_pool_3x3"), (1, 2, "skip_connect")), False, 4, 1)
    fig = draw_cell(Genotype((cell,)), 0)
    arrows = [a for a in fig.axes[0].patches if isinstance(a, FancyArrowPatch)]
    assert arrows[0].get_connectionstyle().rad != arrows[1].get_connectionstyle().rad
