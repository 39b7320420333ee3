import torch

from gasgnn import SearchSpace, Supernet


def test_forward_backward_default_space():
    s = SearchSpace()
    net = Supernet(s)
    out = net(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 11, 64, 64)
    out.logsumexp(1).mean().backward()
    assert net.alpha.grad is not None and net.alpha.grad.abs().sum() > 0
    assert all(p.grad is not None for p in net.weight_parameters())
    # alpha rows of every cell get gradient
    g = net.alpha.grad.abs().view(12, 14, 8).sum((1, 2))
    assert (g > 0).all()


def test_no_shared_tensors_between_cells():
    net = Supernet(SearchSpace(num_cells=6))
    seen = {}
    for k, cell in enumerate(net.cells):
        for p in cell.parameters():
            assert p.data_ptr() not in seen, f"cell {k} shares a tensor with cell {seen.get(p.data_ptr())}"
            seen[p.data_ptr()] = k
    names = {n for n, _ in net.named_parameters()}
    assert "alpha" in names
    assert len(net.arch_parameters()) == 1
    assert len(list(net.weight_parameters())) == len(names) - 1


def test_alpha_prime_is_used(tiny_space):
    net = Supernet(tiny_space).eval()
    x = torch.randn(1, 3, 32, 32)
    a2 = torch.randn_like(net.alpha)
    y1 = net(x, a2)
    y2 = net(x, weights=torch.softmax(a2, -1))
    assert torch.allclose(y1, y2)
    assert not torch.allclose(y1, net(x))


def test_none_only_edge_weight_zero(tiny_space):
    # With all weight on 'none', a mixed op's output is exactly zero.
    from gasgnn.models import MixedOp

    m = MixedOp(4, 1, tiny_space.ops)
    w = torch.zeros(8)
    w[0] = 1.0
    assert m(torch.randn(2, 4, 8, 8), w).abs().sum() == 0


# ---------------------------------------------------------------------------------------------
# Memory options of the mixed op.

import pytest  # noqa: E402
from torch import nn  # noqa: E402

from gasgnn.models import MemoryOptions, MixedOp, channel_shuffle  # noqa: E402
from gasgnn.space import GAS_OPS  # noqa: E402


def _run(m, x, a):
    """Output and gradients (input, alpha, every parameter) of one forward/backward of a mixed op."""
    x = x.clone().requires_grad_()
    a = a.clone().requires_grad_()
    out = m(x, torch.softmax(a, 0))
    params = list(m.parameters())
    loss = (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum()  # asymmetric: BN sums cancel
    grads = torch.autograd.grad(loss, [x, a, *params])
    return out, grads


def _pair(stride, **memory):
    plain = MixedOp(4, stride, GAS_OPS)
    other = MixedOp(4, stride, GAS_OPS, memory=MemoryOptions(**memory))
    other.load_state_dict(plain.state_dict())
    return plain, other


@pytest.mark.parametrize("stride", [1, 2])
def test_checkpoint_same_outputs_grads_and_bn_stats(stride):
    plain, ckpt = _pair(stride, checkpoint=True)
    x, a = torch.randn(2, 4, 7, 9), torch.randn(8)
    (o1, g1), (o2, g2) = _run(plain, x, a), _run(ckpt, x, a)
    assert torch.equal(o1, o2)
    assert all(torch.equal(p, q) for p, q in zip(g1, g2))
    # the recomputation in backward must not update the batch-norm statistics a second time
    for (n, b1), (_, b2) in zip(plain.named_buffers(), ckpt.named_buffers()):
        assert torch.equal(b1, b2), n


@pytest.mark.parametrize("stride", [1, 2])
def test_shared_relu_same_function_fewer_relus(stride):
    plain, shared = _pair(stride, shared_relu=True)
    n_relu = sum(isinstance(m, nn.ReLU) for m in shared.modules())
    assert n_relu < sum(isinstance(m, nn.ReLU) for m in plain.modules())
    # every conv op (and the stride-2 skip) reads the shared relu(x); pooling and the identity skip do not
    fed = {n: f for n, f in zip((o for o in GAS_OPS if o != "none"), shared.relu_fed)}
    assert fed == {"skip_connect": stride == 2, "max_pool_3x3": False, "conv_3x3": True, "sep_conv_3x3": True,
                   "dil_conv_3x3": True, "dil_conv_3x3_d4": True, "dil_conv_3x3_d8": True}
    x, a = torch.randn(2, 4, 7, 9), torch.randn(8)
    (o1, g1), (o2, g2) = _run(plain, x, a), _run(shared, x, a)
    assert torch.equal(o1, o2)
    for p, q in zip(g1, g2):  # the input gradient sums the same terms, possibly in another order
        torch.testing.assert_close(q, p, rtol=1e-6, atol=1e-7)


def test_partial_channels_one_is_the_plain_op():
    plain, pc1 = _pair(2, partial_channels=1)
    x, a = torch.randn(2, 4, 7, 9), torch.randn(8)
    (o1, g1), (o2, g2) = _run(plain, x, a), _run(pc1, x, a)
    assert torch.equal(o1, o2) and all(torch.equal(p, q) for p, q in zip(g1, g2))


@pytest.mark.parametrize("stride,size,out", [(1, (7, 9), (7, 9)), (2, (7, 9), (4, 5)), (2, (6, 8), (3, 4))])
def test_partial_channels_shapes_gradients_and_bypass(stride, size, out):
    m = MixedOp(8, stride, GAS_OPS, memory={"partial_channels": 4})
    assert m.ops[2][1].weight.shape[:2] == (2, 2)  # conv_3x3 sees C/k = 2 channels
    x, a = torch.randn(2, 8, *size), torch.randn(8)
    y, grads = _run(m, x, a)
    assert y.shape == (2, 8, *out)
    assert all(g.abs().sum() > 0 for g in grads[:2]), "input and alpha get gradient"
    assert sum(g.abs().sum() > 0 for g in grads[2:]) == len(grads) - 2
    if stride == 1:
        # channel shuffle: output channel i*k+g, g >= 1, is bypassed input channel g*C/k + i
        for g in range(1, 4):
            for i in range(2):
                assert torch.equal(y[:, i * 4 + g], x[:, g * 2 + i])
    assert torch.equal(channel_shuffle(channel_shuffle(x, 4), 2), x)  # 8 = 4 * 2: shuffles invert


def test_memory_options_validation():
    with pytest.raises(ValueError, match="partial_channels"):
        MemoryOptions(partial_channels=0)
    with pytest.raises(TypeError, match="checkpoint"):
        MemoryOptions(checkpoint=1)
    with pytest.raises(ValueError, match="unknown option"):
        MixedOp(4, 1, GAS_OPS, memory={"checkpointing": True})
    with pytest.raises(ValueError, match="does not divide the 4 channels"):
        MixedOp(4, 1, GAS_OPS, memory=MemoryOptions(partial_channels=3))
    with pytest.raises(ValueError, match="stride-2 skip_connect"):
        MixedOp(4, 2, GAS_OPS, memory=MemoryOptions(partial_channels=4))
    with pytest.raises(ValueError, match=r"cell 0 edge 0->2"):
        Supernet(SearchSpace(channels=6, num_cells=3), memory={"partial_channels": 4})


def test_supernet_with_all_memory_options(tiny_space):
    plain = Supernet(tiny_space)
    mem = Supernet(tiny_space, memory=MemoryOptions(checkpoint=True, shared_relu=True))
    mem.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 16, 16)
    outs = []
    for net in (plain, mem):
        out = net(x)
        out.square().mean().backward()
        outs.append(out)
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(mem.alpha.grad, plain.alpha.grad, rtol=1e-5, atol=1e-7)
    pc = Supernet(tiny_space, memory={"partial_channels": 2, "checkpoint": True, "shared_relu": True})
    out = pc(x)
    assert out.shape == (2, tiny_space.num_classes, 16, 16)
    out.square().mean().backward()
    assert pc.alpha.grad.abs().sum() > 0 and all(p.grad is not None for p in pc.weight_parameters())
