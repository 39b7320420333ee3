import pytest
import torch

from gasgnn import SearchSpace, derive


def test_derive_known_answer():
    s = SearchSpace(num_cells=2, num_nodes=2, reduction_cells=(1,))  # E = 5: (0,2) (1,2) (0,3) (1,3) (2,3)
    ops = list(s.ops)
    alpha = torch.zeros(10, 8)
    # Cell 0, node 2: edge (1,2) strongest via sep_conv; edge (0,2) next via conv.
    alpha[0, ops.index("conv_3x3")] = 2.0
    alpha[1, ops.index("sep_conv_3x3")] = 3.0
    # Node 3: 'none' dominates edge (0,3) but does not count; (2,3) and (1,3) win.
    alpha[2, ops.index("none")] = 10.0
    alpha[3, ops.index("dil_conv_3x3_d8")] = 1.0
    alpha[4, ops.index("skip_connect")] = 4.0
    # Cell 1: a uniform alpha -> ties broken towards earlier sources and the first non-none op.
    g = derive(s, alpha)
    assert g.cells[0].edges == ((0, 2, "conv_3x3"), (1, 2, "sep_conv_3x3"), (1, 3, "dil_conv_3x3_d8"),
                                (2, 3, "skip_connect"))
    assert g.cells[1].edges == ((0, 2, "skip_connect"), (1, 2, "skip_connect"), (0, 3, "skip_connect"),
                                (1, 3, "skip_connect"))
    assert g.cells[1].reduction and not g.cells[0].reduction
    assert g.space == s


def test_derive_cells_independent():
    s = SearchSpace(num_cells=4)
    alpha = torch.randn(s.num_arch_nodes, s.num_ops)
    g = derive(s, alpha)
    # Each cell's genotype depends only on its own rows.
    alpha2 = alpha.clone()
    alpha2[s.cell_slice(2)] = torch.randn(14, 8)
    g2 = derive(s, alpha2)
    assert [g.cells[k] for k in (0, 1, 3)] == [g2.cells[k] for k in (0, 1, 3)]
    assert all(len(c.edges) == 2 * s.num_nodes for c in g.cells)


def test_derive_bad_alpha():
    s = SearchSpace(num_cells=2)
    with pytest.raises(ValueError, match="shape"):
        derive(s, torch.zeros(3, 8))
    with pytest.raises(ValueError, match="NaN"):
        derive(s, torch.full((28, 8), float("nan")))


def test_op_entropy():
    import math

    from gasgnn.genotype import op_entropy

    assert torch.allclose(op_entropy(torch.zeros(3, 8)), torch.full((3,), math.log(8)))
    peaked = torch.zeros(2, 8)
    peaked[:, 3] = 50.0
    assert op_entropy(peaked).max() < 1e-6
