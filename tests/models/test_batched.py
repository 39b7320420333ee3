"""The node-batched cell computes the per-edge cell's function: outputs, every gradient, BN statistics."""

import copy

import pytest
import torch
from torch import nn

from gasgnn import SearchSpace
from gasgnn.models import BatchedSearchCell, PerEdge, SearchCell, Supernet, load_per_edge
from gasgnn.space import BatchedSepConv, EdgeShared, ReLUConvBN, register_op


# User-registered ops: two that opt in to batching, two that do not (one parametric, one not).
@register_op("t_sep_conv_5x5", receptive_field=9, overwrite=True,
             batch=lambda C, stride, affine, n: BatchedSepConv(C, 5, stride, 2, n, affine))
def _sep5(C, stride, affine):
    from gasgnn.space import SepConv

    return SepConv(C, C, 5, stride, 2, affine=affine)


@register_op("t_avg_pool_3x3", light=True, parametric=False, overwrite=True,
             batch=lambda C, stride, affine, n: EdgeShared(nn.AvgPool2d(3, stride, 1, count_include_pad=False)))
def _avg(C, stride, affine):
    return nn.AvgPool2d(3, stride, 1, count_include_pad=False)


@register_op("t_conv_1x1", receptive_field=1, overwrite=True)
def _conv1(C, stride, affine):
    return ReLUConvBN(C, C, 1, stride, 0, affine=affine)


@register_op("t_min_pool_3x3", light=True, parametric=False, overwrite=True)
def _minpool(C, stride, affine):
    class MinPool(nn.Module):
        def forward(self, x):
            return -nn.functional.max_pool2d(-x, 3, stride, 1)

    return MinPool()


GAS = SearchSpace().ops
DARTS = ("none", "max_pool_3x3", "t_avg_pool_3x3", "skip_connect", "sep_conv_3x3", "t_sep_conv_5x5",
         "dil_conv_3x3")
USER = ("none", "t_conv_1x1", "t_min_pool_3x3", "t_sep_conv_5x5", "skip_connect")


def _pair(ops, reduction, reduction_prev, memory=None, num_nodes=3, C=4):
    space = SearchSpace(num_nodes=num_nodes, ops=ops)
    a = SearchCell(space, 6, 8, C, reduction, reduction_prev, memory)
    b = BatchedSearchCell(space, 6, 8, C, reduction, reduction_prev, memory)
    load_per_edge(b, a)
    return space, a, b


def _run(cell, s0, s1, w):
    s0, s1, w = (t.detach().clone().requires_grad_() for t in (s0, s1, w))
    out = cell(s0, s1, w)
    out.backward(torch.randn(out.shape, generator=torch.Generator().manual_seed(1)))
    return out, s0.grad, s1.grad, w.grad


def _check_same(ops, reduction, reduction_prev, memory=None):
    space, a, b = _pair(ops, reduction, reduction_prev, memory)
    H = 5  # odd: the stride-2 paths pad
    H0 = 2 * H if reduction_prev else H
    s0, s1 = torch.randn(2, 6, H0, H0), torch.randn(2, 8, H, H)
    w = torch.softmax(torch.randn(space.edges_per_cell, len(ops)), -1)
    ref, got = _run(a, s0, s1, w), _run(b, s0, s1, w)
    for name, x, y in zip(("output", "grad s0", "grad s1", "grad of the op weights (alpha)"), got, ref):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-4, msg=lambda m, name=name: f"{name}: {m}")
    # Every weight gradient: the per-edge gradients, laid out as batched weights, equal the batched ones.
    grads = copy.deepcopy(a)
    for p, q in zip(grads.parameters(), a.parameters()):
        p.data = q.grad.clone()
    as_batched = copy.deepcopy(b)
    load_per_edge(as_batched, grads)
    params = dict(as_batched.named_parameters())
    assert params, "the cell has weights"
    for n, p in b.named_parameters():
        torch.testing.assert_close(p.grad, params[n], rtol=1e-4, atol=1e-4, msg=lambda m, n=n: f"grad of {n}: {m}")
    # Batch-norm running statistics (one forward each; a checkpoint recomputation must not count twice).
    stats = copy.deepcopy(b)
    load_per_edge(stats, a)
    for (n, x), (_, y) in zip(b.named_buffers(), stats.named_buffers()):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-4, msg=lambda m, n=n: f"buffer {n}: {m}")


CELLS = [(False, False), (True, False), (False, True)]  # normal, reduction, after a reduction


@pytest.mark.parametrize("ops", [GAS, DARTS, USER], ids=["gas", "darts", "user"])
@pytest.mark.parametrize("reduction,reduction_prev", CELLS, ids=["normal", "reduction", "after_reduction"])
def test_batched_cell_equals_per_edge(ops, reduction, reduction_prev):
    _check_same(ops, reduction, reduction_prev)


@pytest.mark.parametrize("memory", [{"checkpoint": True}, {"shared_relu": True},
                                    {"checkpoint": True, "shared_relu": True}], ids=["ckpt", "relu", "both"])
@pytest.mark.parametrize("reduction", [False, True], ids=["normal", "reduction"])
def test_batched_cell_equals_per_edge_with_memory_options(memory, reduction):
    _check_same(GAS, reduction, False, memory)
    _check_same(USER, reduction, False, memory)


def test_batching_is_used_and_fallbacks_are_per_edge():
    _, _, b = _pair(USER, False, False)
    node = b.nodes[0]
    kinds = {slot.name: type(op) for slot, op in node.op_slots()}
    assert kinds["t_sep_conv_5x5"] is BatchedSepConv
    assert kinds["t_conv_1x1"] is PerEdge and kinds["t_min_pool_3x3"] is PerEdge
    assert [s.name for s in node.slots if s.edge_shared] == ["skip_connect"]  # shared, once
    assert [s.col for s in node.slots] == [1, 2, 3, 4] and "none" not in kinds  # batched first, then shared
    # node i's edges go to every later intermediate node, driven by those edges' rows of the cell
    edges = SearchSpace(num_nodes=3, ops=USER).cell_edges()
    for out in b.edges_out:
        assert [edges[r] for r in out.rows] == [(out.src, j) for j in out.dsts]
    assert [out.src for out in b.edges_out] == [0, 1, 2, 3]
    _, _, g = _pair(GAS, False, False)
    assert not any(isinstance(op, PerEdge) for n in g.nodes for op in n.batched)
    # one node with n outgoing edges: one conv with n*C outputs, not n convs
    assert [n.n for n in g.nodes] == [3, 3, 2, 1]


def test_supernet_default_is_batched_and_partial_channels_fall_back(tiny_space):
    assert all(isinstance(c, BatchedSearchCell) for c in Supernet(tiny_space).cells)
    assert all(isinstance(c, SearchCell) for c in Supernet(tiny_space, batched=False).cells)
    pc = Supernet(tiny_space, memory={"partial_channels": 2})
    assert not pc.batched and all(isinstance(c, SearchCell) for c in pc.cells)


def test_supernet_batched_equals_per_edge_and_state_dict_round_trip(tiny_space):
    a, b = Supernet(tiny_space, batched=False), Supernet(tiny_space)
    for ca, cb in zip(a.cells, b.cells):
        load_per_edge(cb, ca)
    b.stem.load_state_dict(a.stem.state_dict())
    b.head.load_state_dict(a.head.state_dict())
    b.alpha.data.copy_(a.alpha.data)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(b(x), a(x), rtol=1e-4, atol=1e-4)
    c = Supernet(tiny_space)
    c.load_state_dict(b.state_dict())  # resume: the batched layout round-trips
    torch.testing.assert_close(c.eval()(x), b.eval()(x))


def test_architecture_step_leaves_weight_grads_unset(tiny_space):
    from gasgnn.search import SearchConfig, Searcher

    s = Searcher(tiny_space, SearchConfig(guide="gcn_sim", warmup_epochs=0), lambda e: [], lambda e: [],
                 progress=False)
    x, y = torch.randn(2, 3, 32, 32), torch.randint(0, 11, (2, 32, 32))
    seen = {}
    orig = s.a_opt.step

    def spy(*args, **kwargs):  # the moment the architecture update is taken
        seen["w"] = [p.grad for p in s.w_params]
        seen["a"] = [p.grad for p in s.a_params]
        seen["frozen"] = [p.requires_grad for p in s.w_params]
        return orig(*args, **kwargs)

    s.a_opt.step = spy
    s.step((x, y), (x, y), 1.0)
    assert all(g is None for g in seen["w"]), "the architecture step computed weight gradients"
    assert seen["a"][0] is not None and seen["a"][0].abs().sum() > 0
    assert all(p.requires_grad for p in s.w_params)  # unfrozen again for the weight step
    assert all(p.grad is not None for p in s.w_params)  # which did compute them


def test_cuda_graphs_need_cuda(tiny_space):
    from gasgnn.search import SearchConfig, Searcher

    if torch.cuda.is_available():
        pytest.skip("has CUDA")
    with pytest.raises(ValueError, match="cuda_graphs: needs a CUDA device"):
        Searcher(tiny_space, SearchConfig(cuda_graphs=True), lambda e: [], lambda e: [], progress=False)
