"""The fused mixed-op kernels against the reference: compiled on a GPU, in Triton's interpreter on the CPU
(tests/conftest.py sets ``TRITON_INTERPRET=1`` only where there is no GPU). Every comparison runs on one
device."""

import pytest
import torch

from gasgnn import kernels
from gasgnn.kernels import mixed_sum, mixed_sum_reference, use_backend

needs_triton = pytest.mark.skipif(not kernels.triton_available(), reason="Triton >= 3.2 is not installed")


@pytest.fixture
def triton_mod(monkeypatch):
    """The kernel module with a tiny block, so small tensors span several blocks and a ragged tail."""
    if not kernels.triton_available():
        pytest.skip("Triton >= 3.2 is not installed")
    from gasgnn.kernels import triton_kernels as _triton

    if not _triton.INTERPRETED and not torch.cuda.is_available():
        pytest.skip("gasgnn.kernels.triton_kernels was imported without TRITON_INTERPRET=1 and there is no GPU")
    monkeypatch.setattr(_triton, "BLOCK", 16)
    return _triton


def _device():
    return "cuda" if torch.cuda.is_available() else "cpu"


def _inputs(shape, K, dtype=torch.float32, requires_grad=True):
    ys = [torch.randn(shape, dtype=dtype, device=_device(), requires_grad=requires_grad) for _ in range(K)]
    w = torch.softmax(torch.randn(K, dtype=dtype, device=_device()), 0).requires_grad_(requires_grad)
    return ys, w


def _grads(fn, ys, w, g):
    out = fn(ys, w)
    gs = torch.autograd.grad(out, [*ys, w], g)
    return out, gs[:-1], gs[-1]


# (shape, K): odd sizes that do not divide the block, one element, one op, a 4-D op output
SHAPES = [((5,), 1), ((3, 7, 11), 3), ((2, 3, 5, 7), 7), ((1,), 2), ((16,), 4), ((2, 1, 9, 3), 8)]


@pytest.mark.parametrize("shape,K", SHAPES)
def test_forward_and_gradients_match_reference(triton_mod, shape, K):
    ys, w = _inputs(shape, K)
    g = torch.randn(shape, device=_device())
    ref, ref_gy, ref_gw = _grads(mixed_sum_reference, ys, w, g)
    with use_backend("triton"):
        out, gy, gw = _grads(mixed_sum, ys, w, g)
    torch.testing.assert_close(out, ref)
    for k in range(K):
        torch.testing.assert_close(gy[k], ref_gy[k], msg=f"grad of y_{k}")
    torch.testing.assert_close(gw, ref_gw, rtol=1e-5, atol=1e-5)


def test_float64_is_exact_to_rounding_and_gradcheck(triton_mod):
    ys, w = _inputs((2, 3, 5), 3, dtype=torch.float64)
    with use_backend("triton"):
        assert torch.autograd.gradcheck(lambda w, *ys: mixed_sum(ys, w), (w, *ys))
        out = mixed_sum(ys, w)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, mixed_sum_reference(ys, w), rtol=1e-14, atol=1e-14)


def test_half_precision(triton_mod):
    ys, w = _inputs((3, 5, 7), 3, dtype=torch.float16)
    g = torch.randn(3, 5, 7, dtype=torch.float16, device=_device())
    ref = _grads(mixed_sum_reference, [y.float() for y in ys], w.float(), g.float())
    with use_backend("triton"):
        out, gy, gw = _grads(mixed_sum, ys, w, g)
    assert out.dtype == gw.dtype == torch.float16
    torch.testing.assert_close(out.float(), ref[0], rtol=2e-3, atol=2e-3)
    torch.testing.assert_close(gw.float(), ref[2], rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(gy[1].float(), ref[1][1], rtol=2e-3, atol=2e-3)


def test_partial_requires_grad(triton_mod):
    # w frozen (warm-up with alpha fixed): only grad_y; one y frozen: its grad is None, the rest flow
    ys, w = _inputs((2, 3, 5), 3)
    g = torch.randn(2, 3, 5, device=_device())
    with use_backend("triton"):
        gy = torch.autograd.grad(mixed_sum(ys, w.detach()), ys, g)
    for k in range(3):
        torch.testing.assert_close(gy[k], w[k].detach() * g)
    ys[1] = ys[1].detach()
    with use_backend("triton"):
        out = mixed_sum(ys, w)
    out.backward(g)
    assert ys[1].grad is None and ys[0].grad is not None and w.grad is not None
    expect = torch.stack([(g * y).sum() for y in ys]).detach()
    torch.testing.assert_close(w.grad, expect, rtol=1e-5, atol=1e-5)


def test_layouts_channels_last_and_strided(triton_mod):
    ys, w = _inputs((2, 3, 5, 7), 3)
    cl = [y.detach().to(memory_format=torch.channels_last).requires_grad_() for y in ys]
    mixed = [cl[0], ys[1], ys[2].transpose(2, 3).contiguous().transpose(2, 3)]  # layouts disagree
    g = torch.randn(2, 3, 5, 7, device=_device())
    ref = _grads(mixed_sum_reference, ys, w, g)
    with use_backend("triton"):
        for inp in (cl, mixed):
            out, gy, gw = _grads(mixed_sum, inp, w, g)
            torch.testing.assert_close(out, ref[0])
            torch.testing.assert_close(gy[2], ref[1][2])
            torch.testing.assert_close(gw, ref[2], rtol=1e-5, atol=1e-5)
        out = mixed_sum(cl, w)
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_empty_tensors(triton_mod):
    ys, w = _inputs((0, 3), 2)
    with use_backend("triton"):
        out = mixed_sum(ys, w)
        out.sum().backward()
    assert out.shape == (0, 3) and torch.equal(w.grad, torch.zeros(2, device=_device()))


def test_mixed_op_triton_equals_reference(triton_mod):
    from gasgnn.models import MixedOp
    from gasgnn.space import GAS_OPS

    m = MixedOp(4, 2, GAS_OPS).to(_device())
    x = torch.randn(2, 4, 7, 5, device=_device(), requires_grad=True)
    a = torch.randn(len(GAS_OPS), device=_device(), requires_grad=True)
    res = []
    for backend in ("reference", "triton"):
        with use_backend(backend):
            out = m(x, torch.softmax(a, 0))
        res.append((out, *torch.autograd.grad(out.square().sum(), [x, a])))
    for r, t in zip(*res):
        torch.testing.assert_close(t, r, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Dispatch: runs with or without Triton.


def test_auto_uses_reference_on_cpu(monkeypatch):
    monkeypatch.delenv("GASGNN_KERNELS", raising=False)
    t = torch.zeros(2)
    assert kernels.get_backend() == "auto" and kernels.resolve_backend(t) == "reference"
    with use_backend("reference"):
        assert kernels.get_backend() == "reference"
    assert kernels.get_backend() == "auto"


def test_env_var_and_set_backend(monkeypatch):
    monkeypatch.setenv("GASGNN_KERNELS", "Reference")
    assert kernels.get_backend() == "reference"
    kernels.set_backend("auto")  # overrides the environment until reset
    try:
        assert kernels.get_backend() == "auto"
    finally:
        kernels.set_backend(None)
    assert kernels.get_backend() == "reference"
    monkeypatch.setenv("GASGNN_KERNELS", "cuda")
    with pytest.raises(ValueError, match="GASGNN_KERNELS"):
        kernels.get_backend()
    with pytest.raises(ValueError, match="set_backend"):
        kernels.set_backend("fast")


def test_forced_triton_without_triton_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(kernels.dispatch, "triton_available", lambda: False)
    with use_backend("triton"), pytest.raises(RuntimeError, match="Triton >= 3.2 is not installed"):
        mixed_sum([torch.zeros(3)], torch.ones(1))


def test_input_validation():
    with pytest.raises(ValueError, match="no op outputs"):
        mixed_sum([], torch.ones(0))
    with pytest.raises(ValueError, match=r"w must have shape \[2\]"):
        mixed_sum([torch.zeros(3), torch.zeros(3)], torch.ones(3))
    with pytest.raises(ValueError, match=r"ys\[1\]"):
        mixed_sum([torch.zeros(3), torch.zeros(4)], torch.ones(2))


# ---------------------------------------------------------------------------------------------
# edge_mix: the node-batched combination (n edges, K edge-batched and S shared op outputs).

EDGE_CASES = [(1, 2, 1, 3, 5), (3, 2, 2, 3, 5), (4, 3, 0, 2, 3), (2, 0, 2, 3, 7), (3, 1, 1, 1, 1)]


@pytest.mark.parametrize("n,K,S,C,H", EDGE_CASES)
@pytest.mark.parametrize("need_w", [True, False])
def test_edge_mix_matches_reference(triton_mod, n, K, S, C, H, need_w):
    dev = _device()
    ys = [torch.randn(2, n * C, H, H + 1, device=dev, requires_grad=True) for _ in range(K)]
    xs = [torch.randn(2, C, H, H + 1, device=dev, requires_grad=True) for _ in range(S)]
    w = torch.softmax(torch.randn(n, K + S, device=dev), -1).requires_grad_(need_w)
    g = torch.randn(2, n * C, H, H + 1, device=dev)
    ins = [*ys, *xs] + ([w] if need_w else [])
    ref = kernels.edge_mix_reference(ys, xs, w)
    ref_g = torch.autograd.grad(ref, ins, g)
    with use_backend("triton"):
        out = kernels.edge_mix(ys, xs, w)
    got_g = torch.autograd.grad(out, ins, g)
    torch.testing.assert_close(out, ref)
    for i, (a, b) in enumerate(zip(got_g, ref_g)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=lambda m, i=i: f"grad {i}: {m}")


def test_edge_mix_validation():
    y = torch.randn(1, 6, 2, 2)
    with pytest.raises(ValueError, match="w must be"):
        kernels.edge_mix([y], [], torch.ones(3, 2))
    with pytest.raises(ValueError, match="no op outputs"):
        kernels.edge_mix([], [], torch.ones(3, 0))
