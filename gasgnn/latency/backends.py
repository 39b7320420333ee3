"""Latency backends: the runtime a table entry or a whole network runs on while it is timed.

A latency table is only as good as its match with how the network will run. Eager PyTorch runs every
piece as its own call; ONNX Runtime and ``torch.compile`` fuse ops and drop Python overhead. A backend is
one class registered in :data:`LATENCY_BACKENDS`; it turns a module and its example inputs into a
zero-argument call. The same backend runs the pieces of a table (:func:`gasgnn.latency.measure_key`), the
whole networks that validate it (:func:`gasgnn.latency.validate`) and ``gasgnn bench``; its name is
recorded in the table's metadata (``meta.backend``; tables without it are ``torch``).

Registered here:

- ``torch``: eager PyTorch (a piece is the same Python call the network makes).
- ``onnxruntime``: each piece or network exported to ONNX and run in an ONNX Runtime session with the
  table's intra-op threads and the deployment's graph optimisation level
  (:data:`~gasgnn.latency.onnx_runtime.ORT_OPTIMIZATION`), inputs and outputs bound once (I/O binding).
  float32 only; on CUDA it needs ``onnxruntime-gpu``.
- ``torch-compile``: :func:`torch.compile` (inductor) of each piece and network. It needs a C++ compiler
  on the CPU and Triton on the GPU, and compiling costs seconds per distinct piece shape and tens of
  seconds per network, so tables take minutes and validation is slow.

A user-defined backend subclasses :class:`LatencyBackend`, implements :meth:`~LatencyBackend.prepare` and
registers itself (docs/latency.md has a runnable example)::

    @LATENCY_BACKENDS.register("torch-channels-last")
    class ChannelsLast(LatencyBackend):
        def prepare(self, module, inputs):
            ...
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gasgnn.latency.keys import DEFAULT_BACKEND, dtype_name
from gasgnn.latency.timing import time_call
from gasgnn.registry import Registry

__all__ = ["LATENCY_BACKENDS", "BackendUnavailable", "LatencyBackend", "OnnxRuntimeBackend", "PieceFn",
           "TorchBackend", "TorchCompileBackend", "make_backend"]


class BackendUnavailable(RuntimeError, ValueError):
    """A backend cannot run here (package missing, dtype or device unsupported, compiler failure); the
    message says why. A :class:`ValueError` too, so commands print it as one line."""


class PieceFn(nn.Module):
    """A piece that is a plain function in the network (a node's Python ``sum``, the cell's ``torch.cat``,
    the final upsampling), wrapped as a module so every backend can export or compile it.

    The ``torch`` backend calls :attr:`fn` directly, as the network does, without the module-call overhead.

    Args:
        fn (callable): The function of the piece's inputs.
    """

    def __init__(self, fn: Callable[..., Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *xs: Tensor) -> Tensor:
        return self.fn(*xs)


class LatencyBackend:
    """How a piece or a network is run when it is timed. Subclass, implement :meth:`prepare`, register the
    class in :data:`LATENCY_BACKENDS`.

    Args:
        device (str or torch.device, optional): Where it runs. (default: :obj:`"cpu"`)
        dtype (str or torch.dtype, optional): The table's dtype. (default: :obj:`"float32"`)
        threads (int, optional): Intra-op CPU threads; :obj:`None` is torch's current number.
            (default: :obj:`None`)
    """

    #: The registry name (set by :func:`make_backend`).
    name: str = ""
    #: Whether a table entry is timed cycling through cold copies of its piece (:func:`~gasgnn.latency.measure.
    #: piece_runner`): right where a piece inside a network meets cold caches; wrong where switching between
    #: copies costs more than the cache misses it stands for (a runtime session per copy, each with its own
    #: thread pool to wake).
    cold_copies: bool = True

    def __init__(self, device: str | torch.device = "cpu", dtype: str | torch.dtype = "float32",
                 threads: int | None = None) -> None:
        self.device = torch.device(device)
        self.dtype = dtype_name(dtype)
        self.threads = int(threads or torch.get_num_threads())

    def check(self) -> None:
        """Raises :class:`BackendUnavailable` when the backend cannot run on this device and dtype."""

    def info(self) -> dict[str, Any]:
        """What the table's metadata records about the backend (versions, options); a table is resumed
        only by the same info. (default: nothing)"""
        return {}

    def prepare(self, module: nn.Module, inputs: tuple[Tensor, ...]) -> Callable[[], Any]:
        """A zero-argument call running ``module(*inputs)`` on this backend.

        ``module`` is in eval mode and on the device, with the table's dtype; the call is made under
        :func:`torch.inference_mode` and must do all its work before returning (or leave it on the current
        CUDA stream). Raise :class:`BackendUnavailable` when the module cannot run here.

        Args:
            module (nn.Module): The piece (possibly a :class:`PieceFn`) or network.
            inputs (tuple of Tensor): Its inputs.
        """
        raise NotImplementedError

    def prepare_copies(self, make: Callable[[], tuple[nn.Module, tuple[Tensor, ...]]],
                       copies: int) -> list[Callable[[], Any]]:
        """``copies`` independent calls of the piece ``make()`` builds (its own weights and inputs each), so
        a timing loop can cycle through more memory than the caches hold. Override when copies can share
        costly preparation (an export, a compile).

        Args:
            make (callable): Builds one ``(module, inputs)``.
            copies (int): How many.
        """
        return [self.prepare(*make()) for _ in range(copies)]

    def call_overhead_ms(self) -> float:
        """The fixed cost (ms) of one call that a whole network pays once but a table pays once per piece
        (a session's run overhead, a compiled graph's guards); subtracted from every measured entry.
        (default: 0, right for eager PyTorch, where the network makes the same Python calls)"""
        return 0.0

    def trivial_call_ms(self) -> float:
        """Median time (ms) of this backend's call of a one-element ``x + 0``: what :meth:`call_overhead_ms`
        returns for backends that run each piece as one opaque call. Measured once per backend object."""
        if getattr(self, "_trivial_ms", None) is None:
            x = torch.zeros(1, device=self.device)
            run = self.prepare(PieceFn(_plus_zero), (x,))
            self._trivial_ms = time_call(run, self.device, warmup=20, repeats=30)
        return self._trivial_ms

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.device}, {self.dtype}, threads={self.threads})"


def _plus_zero(x: Tensor) -> Tensor:
    return x + 0


#: Latency backends by name: ``torch``, ``onnxruntime``, ``torch-compile``, and any registered by the user.
LATENCY_BACKENDS: Registry[type[LatencyBackend]] = Registry("latency backend")


def make_backend(name: str | None, device: str | torch.device = "cpu", dtype: str | torch.dtype = "float32",
                 threads: int | None = None, check: bool = True) -> LatencyBackend:
    """The backend ``name`` (:obj:`None`: ``torch``) for ``device``, ``dtype`` and ``threads``.

    Raises:
        RegistryError: for an unknown name (the message lists the registered ones).
        BackendUnavailable: with ``check``, when it cannot run here.
    """
    name = name or DEFAULT_BACKEND
    backend = LATENCY_BACKENDS.get(name)(device=device, dtype=dtype, threads=threads)
    backend.name = name
    if check:
        backend.check()
    return backend


@LATENCY_BACKENDS.register("torch", description="eager PyTorch")
class TorchBackend(LatencyBackend):
    """Eager PyTorch: the module called as it is (a :class:`PieceFn`'s function directly, as the network
    calls it)."""

    def prepare(self, module: nn.Module, inputs: tuple[Tensor, ...]) -> Callable[[], Any]:
        call = module.fn if isinstance(module, PieceFn) else module
        return lambda: call(*inputs)


@LATENCY_BACKENDS.register("torch-compile", description="torch.compile (inductor)")
class TorchCompileBackend(LatencyBackend):
    """:func:`torch.compile` with static shapes; each module is compiled (and run once) when prepared, so a
    compiler failure is a :class:`BackendUnavailable` here rather than a wrong timing later."""

    def check(self) -> None:
        import torch._dynamo

        if not torch._dynamo.is_dynamo_supported():
            raise BackendUnavailable("torch.compile is not supported on this Python/platform")

    def info(self) -> dict[str, Any]:
        return {"compiler": "inductor", "dynamic": False}

    def prepare(self, module: nn.Module, inputs: tuple[Tensor, ...]) -> Callable[[], Any]:
        compiled = torch.compile(module, dynamic=False)
        try:
            with torch.inference_mode():
                compiled(*inputs)  # compile now
        except Exception as e:  # compilers fail in many ways (no C++ toolchain, no Triton, ...)
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise BackendUnavailable(f"torch.compile failed: {msg[:200]}") from None
        return lambda: compiled(*inputs)

    def call_overhead_ms(self) -> float:
        """A compiled call's fixed cost (guards, wrapper): paid once by a compiled network, once per piece by
        the table."""
        return self.trivial_call_ms()


@LATENCY_BACKENDS.register("onnxruntime", description="ONNX Runtime session per piece and network")
class OnnxRuntimeBackend(LatencyBackend):
    """ONNX Runtime: the module exported to ONNX (:func:`~gasgnn.latency.onnx_runtime.onnx_bytes`) and run
    in a session with the table's intra-op threads and the deployment's optimisation level, its inputs
    bound once on the device (I/O binding), so a call times the graph and not numpy conversions.

    The sessions do not spin: a table and a validation hold many sessions in one process, and an idle
    session's spinning threads would take the cores from the one running (a deployment runs one session,
    where spinning only shortens the wake-up). A piece is timed on one hot session (no cold copies): a piece
    inside a network runs in that network's session with its threads awake, while cycling through copies
    would time each session's thread wake-up instead.
    """

    cold_copies = False

    def check(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailable("onnxruntime is not installed (pip install 'gasgnn[export]')") from None
        if self.dtype != "float32":
            raise BackendUnavailable(f"the onnxruntime backend runs fp32 only (float32), not {self.dtype}")
        if self.device.type == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise BackendUnavailable("this onnxruntime has no CUDAExecutionProvider (pip install onnxruntime-gpu)")
        if self.device.type not in ("cpu", "cuda"):
            raise BackendUnavailable(f"the onnxruntime backend runs on cpu or cuda, not {self.device.type}")

    def info(self) -> dict[str, Any]:
        import onnxruntime as ort

        from gasgnn.latency.onnx_runtime import ORT_OPTIMIZATION

        return {"onnxruntime": ort.__version__, "graph_optimization_level": ORT_OPTIMIZATION,
                "intra_op_threads": self.threads}

    def _session(self, model: bytes) -> Any:
        from gasgnn.latency.onnx_runtime import ORT_OPTIMIZATION, onnx_session

        return onnx_session(model, str(self.device), self.threads, ORT_OPTIMIZATION, require_device=True,
                            spinning=False)

    def _bound(self, sess: Any, arrays: Sequence[np.ndarray]) -> Callable[[], Any]:
        import onnxruntime as ort

        where, index = ("cuda", self.device.index or 0) if self.device.type == "cuda" else ("cpu", 0)
        binding = sess.io_binding()
        keep = []  # the bound inputs must outlive the binding
        for meta, a in zip(sess.get_inputs(), arrays):
            value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(a), where, index)
            keep.append(value)
            binding.bind_ortvalue_input(meta.name, value)
        for meta in sess.get_outputs():
            binding.bind_output(meta.name, where, index)

        def run() -> None:
            sess.run_with_iobinding(binding)
            _ = keep

        return run

    def prepare(self, module: nn.Module, inputs: tuple[Tensor, ...]) -> Callable[[], Any]:
        return self.prepare_copies(lambda: (module, inputs), 1)[0]

    def prepare_copies(self, make: Callable[[], tuple[nn.Module, tuple[Tensor, ...]]],
                       copies: int) -> list[Callable[[], Any]]:
        """One export, then ``copies`` sessions of it, each with its own weights (a session holds its own
        initialisers) and its own random inputs."""
        from gasgnn.latency.onnx_runtime import onnx_bytes

        module, inputs = make()
        try:
            model = onnx_bytes(module, inputs)
        except Exception as e:  # an op the exporter cannot convert
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise BackendUnavailable(f"ONNX export failed: {msg[:200]}") from None
        rng = np.random.default_rng(0)
        shapes = [tuple(t.shape) for t in inputs]
        runs = []
        for i in range(copies):
            arrays = ([t.detach().cpu().float().numpy() for t in inputs] if i == 0
                      else [rng.standard_normal(s).astype(np.float32) for s in shapes])
            runs.append(self._bound(self._session(model), arrays))
        return runs

    def call_overhead_ms(self) -> float:
        """A session run's fixed cost: paid once by a network, once per piece by the table."""
        return self.trivial_call_ms()
