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
    from gasgnn.supernet import MixedOp

    m = MixedOp(4, 1, tiny_space.ops)
    w = torch.zeros(8)
    w[0] = 1.0
    assert m(torch.randn(2, 4, 8, 8), w).abs().sum() == 0
