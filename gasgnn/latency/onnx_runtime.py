"""ONNX export and ONNX Runtime sessions: what the ``onnxruntime`` latency backend, ``gasgnn bench`` and
``gasgnn export`` share (they live here, below :mod:`gasgnn.train`, so a latency table can use them).

The TorchScript-based exporter is used (``dynamo=False``): it needs no extra package beyond ``onnx``
(the torch.export-based one needs ``onnxscript``). That exporter cannot convert
``adaptive_avg_pool2d`` when it loses track of the input's spatial size, which happens inside
GASNet, so :func:`make_exportable` swaps every :class:`~torch.nn.AdaptiveAvgPool2d` (ASPP image
pooling, PPM bins) for :class:`ExplicitAdaptiveAvgPool2d`, which computes the same bins with plain
average pooling and means. The exported graph is fixed to the export size; only the batch dimension
may be dynamic.

Sessions are made by :func:`onnx_session` alone, so a latency table's entries, its validation networks and
``gasgnn bench`` run with the same intra-op threads and graph optimisation level (:data:`ORT_OPTIMIZATION`,
ONNX Runtime's own default, which is what a deployment gets unless it changes it).
"""

from __future__ import annotations

import copy
import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ORT_OPTIMIZATION", "ExplicitAdaptiveAvgPool2d", "export_onnx", "make_exportable", "onnx_bytes",
           "onnx_session"]

#: Graph optimisation level of every session (``'disable'``, ``'basic'``, ``'extended'`` or ``'all'``):
#: ONNX Runtime's default, i.e. what a deployment runs with.
ORT_OPTIMIZATION = "all"


class ExplicitAdaptiveAvgPool2d(nn.Module):
    """:class:`~torch.nn.AdaptiveAvgPool2d` written with ops every ONNX exporter handles.

    Bin ``i`` of ``n`` over a side of length ``L`` covers ``[floor(i L / n), ceil((i + 1) L / n))``,
    exactly as in PyTorch. When ``L`` is a multiple of ``n`` this is one average pooling.

    Args:
        output_size (int or (int, int)): Output ``(h, w)``.
    """

    def __init__(self, output_size: int | Sequence[int]) -> None:
        super().__init__()
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        if any(s is None for s in output_size):
            raise ValueError("ExplicitAdaptiveAvgPool2d needs a fixed output size")
        self.output_size = (int(output_size[0]), int(output_size[1]))

    def forward(self, x: Tensor) -> Tensor:
        oh, ow = self.output_size
        if (oh, ow) == (1, 1):
            return x.mean(dim=(2, 3), keepdim=True)
        H, W = int(x.shape[-2]), int(x.shape[-1])
        if H % oh == 0 and W % ow == 0:
            return F.avg_pool2d(x, (H // oh, W // ow))
        rows = []
        for i in range(oh):
            h0, h1 = (i * H) // oh, -((-(i + 1) * H) // oh)
            cols = [x[:, :, h0:h1, (j * W) // ow: -((-(j + 1) * W) // ow)].mean(dim=(2, 3))
                    for j in range(ow)]
            rows.append(torch.stack(cols, dim=-1))
        return torch.stack(rows, dim=-2)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


def make_exportable(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode with adaptive average pools made exportable.

    Args:
        model (nn.Module): The network.

    Returns:
        nn.Module: Same weights and outputs; ``model`` itself is unchanged.
    """
    model = copy.deepcopy(model).eval()
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.AdaptiveAvgPool2d):
                setattr(parent, name, ExplicitAdaptiveAvgPool2d(child.output_size))  # type: ignore[arg-type]
    return model


def _export(module: nn.Module, inputs: tuple[Tensor, ...], f: Any, opset: int, input_names: list[str],
            output_names: list[str], dynamic_axes: dict | None = None) -> None:
    net = make_exportable(module).cpu().float()
    args = tuple(t.detach().cpu().float() for t in inputs)
    with warnings.catch_warnings():
        # The exporter warns that it is the legacy one and about traced shape constants: both intended.
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.onnx.export(net, args, f, dynamo=False, opset_version=opset, input_names=input_names,
                              output_names=output_names, dynamic_axes=dynamic_axes, do_constant_folding=True)


def onnx_bytes(module: nn.Module, inputs: Sequence[Tensor], opset: int = 17) -> bytes:
    """``module`` exported to an in-memory ONNX graph for inputs of the shapes of ``inputs`` (fp32, CPU),
    with inputs ``input0, input1, ...`` and one output ``output``.

    Args:
        module (nn.Module): The module (not modified).
        inputs (sequence of Tensor): Example inputs, one per ``forward`` argument.
        opset (int, optional): ONNX opset. (default: :obj:`17`)

    Returns:
        bytes: The serialised ONNX model.
    """
    buf = io.BytesIO()
    _export(module, tuple(inputs), buf, opset, [f"input{i}" for i in range(len(inputs))], ["output"])
    return buf.getvalue()


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    size: Sequence[int] = (360, 480),
    opset: int = 17,
    dynamic_batch: bool = False,
    in_channels: int = 3,
) -> Path:
    """Exports a network to ONNX in eval mode (input ``image``, output ``logits``).

    Args:
        model (nn.Module): The network (not modified).
        path (str or PathLike): Output ``.onnx`` file (folders are created).
        size ((int, int), optional): Input ``(H, W)`` the graph is fixed to. (default: ``(360, 480)``)
        opset (int, optional): ONNX opset. (default: :obj:`17`)
        dynamic_batch (bool, optional): Make the batch dimension dynamic. (default: :obj:`False`)
        in_channels (int, optional): Image channels. (default: :obj:`3`)

    Returns:
        Path: ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.zeros(1, in_channels, int(size[0]), int(size[1]))
    axes = {"image": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None
    tmp = path.with_name(f".{path.name}.tmp")
    _export(model, (x,), str(tmp), opset, ["image"], ["logits"], axes)
    os.replace(tmp, path)
    return path


def onnx_session(model: str | os.PathLike | bytes, device: str = "cpu", threads: int | None = None,
                 optimization: str = ORT_OPTIMIZATION, require_device: bool = False, spinning: bool = True) -> Any:
    """An ONNX Runtime session for ``model`` (CUDA provider when ``device`` is CUDA and available).

    Args:
        model (str, PathLike or bytes): The ``.onnx`` file, or a serialised model (:func:`onnx_bytes`).
        device (str, optional): ``'cpu'`` or ``'cuda...'``. (default: ``"cpu"``)
        threads (int, optional): Intra-op threads; :obj:`None` is ONNX Runtime's default.
        optimization (str, optional): Graph optimisation level: ``'disable'``, ``'basic'``, ``'extended'``
            or ``'all'``. (default: :data:`ORT_OPTIMIZATION`)
        require_device (bool, optional): Raise instead of falling back to the CPU provider when ``device``
            is CUDA and this onnxruntime has no CUDA provider. (default: :obj:`False`)
        spinning (bool, optional): Let idle intra-op threads spin (ONNX Runtime's default); off where several
            sessions share the cores. (default: :obj:`True`)

    Raises:
        ImportError: if onnxruntime is not installed, or (with ``require_device``) lacks the CUDA provider.
        ValueError: for an unknown ``optimization``.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError("onnxruntime is not installed (pip install 'gasgnn[export]')") from None
    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    if optimization not in levels:
        raise ValueError(f"ONNX Runtime optimisation level must be one of {list(levels)}, got {optimization!r}")
    providers = ["CPUExecutionProvider"]
    if str(device).startswith("cuda"):
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        elif require_device:
            raise ImportError("this onnxruntime has no CUDAExecutionProvider (pip install onnxruntime-gpu)")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = levels[optimization]
    if threads:
        opts.intra_op_num_threads = int(threads)
    if not spinning:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, sess_options=opts, providers=providers)
