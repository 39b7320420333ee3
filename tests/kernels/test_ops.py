"""The fused ops as custom operators: registration (opcheck), both implementations of each operator,
mixed precision, the device guard, and the supernet's two step kinds under ``torch.compile(fullgraph=True)``."""

import pytest
import torch
import torch.nn.functional as F

from gasgnn import SearchSpace, Supernet, kernels
from gasgnn.kernels import layout, ops, use_backend

needs_triton = pytest.mark.skipif(not kernels.triton_available(), reason="Triton >= 3.2 is not installed")


def _device():
    return "cuda" if torch.cuda.is_available() else "cpu"


def _edge_inputs(n=3, K=2, S=1, C=2, H=3, dtype=torch.float32, need_w=True):
    dev = _device()
    ys = [torch.randn(2, n * C, H, H + 1, device=dev, dtype=dtype, requires_grad=True) for _ in range(K)]
    xs = [torch.randn(2, C, H, H + 1, device=dev, dtype=dtype, requires_grad=True) for _ in range(S)]
    w = torch.softmax(torch.randn(n, K + S, device=dev), -1).to(dtype).requires_grad_(need_w)
    return ys, xs, w


@pytest.fixture(params=["kernel", "reference"])
def op_impl(request, monkeypatch):
    """Each CPU implementation of the operators: the Triton kernels (interpreted) and the reference."""
    if request.param == "kernel":
        if not ops.interpreted() and not torch.cuda.is_available():
            pytest.skip("Triton kernels need a GPU or TRITON_INTERPRET=1")
    else:
        if torch.cuda.is_available():
            pytest.skip("the reference implementation is the CPU one")
        monkeypatch.setattr(ops, "interpreted", lambda: False)
    return request.param


@pytest.mark.parametrize("need_w", [True, False])
def test_opcheck_edge_mix(op_impl, need_w):
    ys, xs, w = _edge_inputs(need_w=need_w)
    torch.library.opcheck(torch.ops.gasgnn.edge_mix.default, (ys, xs, w))
    ys2, _, w2 = _edge_inputs(K=3, S=0, need_w=need_w)
    torch.library.opcheck(torch.ops.gasgnn.edge_mix.default, (ys2, [], w2))


@pytest.mark.parametrize("need_w", [True, False])
def test_opcheck_mixed_sum(op_impl, need_w):
    dev = _device()
    ys = [torch.randn(2, 3, 4, 5, device=dev, requires_grad=True) for _ in range(4)]
    w = torch.softmax(torch.randn(4, device=dev), 0).requires_grad_(need_w)
    torch.library.opcheck(torch.ops.gasgnn.mixed_sum.default, (ys, w))
    cl = [y.detach().to(memory_format=torch.channels_last).requires_grad_() for y in ys]
    torch.library.opcheck(torch.ops.gasgnn.mixed_sum.default, (cl, w))


def test_operators_match_autograd_of_the_reference(op_impl):
    ys, xs, w = _edge_inputs()
    g = torch.randn(2, 6, 3, 4, device=_device())
    ref = kernels.edge_mix_reference(ys, xs, w)
    want = torch.autograd.grad(ref, [*ys, *xs, w], g)
    out = torch.ops.gasgnn.edge_mix(ys, xs, w)
    got = torch.autograd.grad(out, [*ys, *xs, w], g)
    torch.testing.assert_close(out, ref)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_without_w_grad_the_op_outputs_are_not_kept(op_impl):
    # The weight step: w needs no gradient, so the K op outputs must not be saved for backward.
    ys, xs, w = _edge_inputs(need_w=False)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = torch.ops.gasgnn.edge_mix(ys, xs, w)
    assert len(saved) == 1 and saved[0] is w
    out.sum().backward()
    assert all(t.grad is not None for t in (*ys, *xs))


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_mixed_precision_keeps_the_op_outputs_dtype(backend):
    # Under autocast the op outputs are bf16 and the weights fp32: both paths return bf16 (a reference that
    # promoted to fp32 would move twice the bytes and make an AMP comparison unfair).
    if backend == "triton" and not (ops.interpreted() or torch.cuda.is_available()):
        pytest.skip("Triton kernels need a GPU or TRITON_INTERPRET=1")
    ys, xs, _ = _edge_inputs(dtype=torch.bfloat16)
    w = torch.softmax(torch.randn(3, 3, device=_device()), -1).requires_grad_()
    with use_backend(backend):
        out = kernels.edge_mix(ys, xs, w)
        ms = kernels.mixed_sum([y.detach() for y in ys], w[0, :2])
    assert out.dtype == ms.dtype == torch.bfloat16
    out.float().sum().backward()
    assert w.grad.dtype == torch.float32 and ys[0].grad.dtype == torch.bfloat16


def test_device_guard_follows_the_tensors_device():
    # Triton launches on the current device; the launchers enter the tensor's own device first.
    guard = layout.on_device(torch.device("cuda", 1))
    assert isinstance(guard, torch.cuda.device) and guard.idx == 1
    assert not isinstance(layout.on_device(torch.zeros(1)), torch.cuda.device)


def test_forced_triton_on_cpu_without_the_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(kernels.dispatch, "interpreted", lambda: False)
    with use_backend("triton"), pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        kernels.edge_mix([torch.zeros(1, 2, 2, 2)], [], torch.ones(1, 1))


# ---------------------------------------------------------------------------------------------
# The supernet's weight step and architecture step under torch.compile(fullgraph=True).

SPACE = dict(num_cells=2, num_nodes=2, reduction_cells=(1,), channels=4, input_size=(16, 16), num_classes=3)


def _steps(net, run, alpha_p, x, y):
    """The two step kinds of the search, as gradients: the weight step (op weights without gradient) and
    the architecture step (weights frozen, gradient to alpha' only)."""
    w = torch.softmax(alpha_p.detach(), -1)
    loss_w = F.cross_entropy(run(x, weights=w), y)
    gw = torch.autograd.grad(loss_w, list(net.weight_parameters()))
    params = list(net.weight_parameters())
    for p in params:
        p.requires_grad_(False)
    try:
        loss_a = F.cross_entropy(run(x, weights=torch.softmax(alpha_p, -1)), y)
        ga = torch.autograd.grad(loss_a, [alpha_p])
    finally:
        for p in params:
            p.requires_grad_(True)
    return loss_w, gw, loss_a, ga


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_supernet_steps_compile_fullgraph_and_match_eager(backend):
    if backend == "triton" and not (ops.interpreted() or torch.cuda.is_available()):
        pytest.skip("Triton kernels need a GPU or TRITON_INTERPRET=1")
    from torch._dynamo.testing import CompileCounterWithBackend

    torch._dynamo.reset()
    dev = _device()
    net = Supernet(SearchSpace(**SPACE)).to(dev).train()
    alpha_p = (net.alpha.detach() + 0.1 * torch.randn_like(net.alpha)).requires_grad_()
    x, y = torch.randn(2, 3, 16, 16, device=dev), torch.randint(0, 3, (2, 16, 16), device=dev)
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(net, fullgraph=True, backend=counter)  # fullgraph: a graph break raises
    with use_backend(backend):
        state = {k: v.clone() for k, v in net.state_dict().items()}
        eager = _steps(net, net, alpha_p, x, y)
        net.load_state_dict(state)  # the same batch-norm statistics for the compiled run
        for _ in range(2):  # the second round must reuse both graphs
            got = _steps(net, compiled, alpha_p, x, y)
            net.load_state_dict(state)
    assert counter.frame_count == 2, "one compiled graph per step kind"
    for a, b in zip(got, eager):
        for ta, tb in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            torch.testing.assert_close(ta, tb, rtol=1e-4, atol=1e-5)
