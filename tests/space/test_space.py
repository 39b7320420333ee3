import pytest
import torch

from gasgnn import SearchSpace, SpaceError


def test_default_arch_graph():
    s = SearchSpace()
    g = s.arch_graph()
    assert s.edges_per_cell == 14
    assert g.num_nodes == 12 * 14 and tuple(g.x.shape) == (12 * 14, 8)
    assert s.reduction_cells == (4, 8) and s.output_stride == 16
    # Per-node attributes: cell index, src/dst, stride 2 only on input edges of reduction cells.
    assert g.cell.tolist() == [k for k in range(12) for _ in range(14)]
    assert g.src[:14].tolist() == [0, 1, 0, 1, 2, 0, 1, 2, 3, 0, 1, 2, 3, 4]
    assert g.dst[:14].tolist() == [2, 2, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5]
    red = g.cell == 4
    assert g.stride[red & (g.src < 2)].eq(2).all() and g.stride[red & (g.src >= 2)].eq(1).all()
    assert g.stride[~g.reduction].eq(1).all()
    assert g.channels[g.cell == 0].eq(16).all() and g.channels[g.cell == 11].eq(64).all()
    # 180x240 at stride 4 -> 45x60; reduction cell 4 takes 45x60 inputs, its inner nodes are 23x30.
    assert (g.height[0].item(), g.width[0].item()) == (45, 60)
    n4 = (g.cell == 4) & (g.src >= 2)
    assert g.height[n4].eq(23).all() and g.width[n4].eq(30).all()
    # default relation: every node of cell k-1 to every node of cell k
    assert g.edge_index.size(1) == 11 * 14 * 14
    assert ((g.cell[g.edge_index[1]] - g.cell[g.edge_index[0]]) == 1).all()


def test_alpha_shape_checked():
    s = SearchSpace(num_cells=3)
    with pytest.raises(SpaceError, match="alpha has shape"):
        s.arch_graph(torch.zeros(5, 8))


@pytest.mark.parametrize(
    "kw,field",
    [
        (dict(num_cells=0), "num_cells"),
        (dict(num_nodes=0), "num_nodes"),
        (dict(reduction_cells=(12,)), "reduction_cells"),
        (dict(reduction_cells=(2, 2)), "reduction_cells"),
        (dict(channels=7), "channels"),
        (dict(stem_stride=3), "stem_stride"),
        (dict(ops=("conv_3x3", "bogus")), "ops"),
        (dict(ops=("none",)), "ops"),
        (dict(input_size=(8, 8)), "input_size"),
    ],
)
def test_impossible_settings(kw, field):
    with pytest.raises(SpaceError, match=f"SearchSpace.{field}"):
        SearchSpace(**kw)


def test_dict_round_trip_and_replace():
    s = SearchSpace(num_cells=6, channels=8, input_size=[64, 96])
    assert SearchSpace.from_dict(s.to_dict()) == s
    assert s.replace(num_cells=3).reduction_cells == (1, 2)
    with pytest.raises(SpaceError, match="unknown search-space field"):
        SearchSpace.from_dict({"cells": 3})


def test_cell_input_sizes_odd():
    s = SearchSpace(input_size=(97, 131))
    sizes = s.cell_input_sizes()
    assert sizes[0] == (25, 33) and sizes[4] == (25, 33) and sizes[5] == (13, 17) and sizes[9] == (7, 9)
