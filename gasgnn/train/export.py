"""ONNX export of trained networks, with an ONNX Runtime parity check.

The TorchScript-based exporter is used (``dynamo=False``): it needs no extra package beyond ``onnx``
(the torch.export-based one needs ``onnxscript``). That exporter cannot convert
``adaptive_avg_pool2d`` when it loses track of the input's spatial size, which happens inside
GASNet, so :func:`make_exportable` swaps every :class:`~torch.nn.AdaptiveAvgPool2d` (ASPP image
pooling, PPM bins) for :class:`ExplicitAdaptiveAvgPool2d`, which computes the same bins with plain
average pooling and means. The exported graph is fixed to the export size; only the batch dimension
may be dynamic.

Example::

    from gasgnn.train.export import export_onnx, onnx_parity

    export_onnx(model, "model.onnx", size=(360, 480))
    print(onnx_parity(model, "model.onnx"))   # largest |torch - onnxruntime|
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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
    net = make_exportable(model).cpu().float()
    x = torch.zeros(1, in_channels, int(size[0]), int(size[1]))
    axes = {"image": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None
    tmp = path.with_name(f".{path.name}.tmp")
    with warnings.catch_warnings():
        # The exporter warns that it is the legacy one and about traced shape constants: both intended.
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.onnx.export(net, (x,), str(tmp), dynamo=False, opset_version=opset, input_names=["image"],
                              output_names=["logits"], dynamic_axes=axes, do_constant_folding=True)
    os.replace(tmp, path)
    return path


def onnx_session(path: str | os.PathLike, device: str = "cpu", threads: int | None = None):
    """An ONNX Runtime session for ``path`` (CUDA provider when ``device`` is CUDA and available).

    Args:
        path (str or PathLike): The ``.onnx`` file.
        device (str, optional): ``'cpu'`` or ``'cuda...'``. (default: ``"cpu"``)
        threads (int, optional): Intra-op threads; :obj:`None` is ONNX Runtime's default.

    Raises:
        ImportError: if onnxruntime is not installed.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError("onnxruntime is not installed (pip install 'gasgnn[export]')") from None
    providers = ["CPUExecutionProvider"]
    if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = int(threads)
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers)


@torch.no_grad()
def onnx_parity(
    model: nn.Module,
    path: str | os.PathLike,
    inputs: Tensor | None = None,
    size: Sequence[int] | None = None,
    batch: int = 1,
    seed: int = 0,
) -> float:
    """The largest absolute difference between the PyTorch and ONNX Runtime outputs (CPU, fp32).

    Args:
        model (nn.Module): The network that was exported.
        path (str or PathLike): The ``.onnx`` file.
        inputs (Tensor, optional): Input ``[N, 3, H, W]``; :obj:`None` draws a seeded normal input of
            ``size`` from the ONNX model's input shape. (default: :obj:`None`)
        size ((int, int), optional): Input size when ``inputs`` is :obj:`None`. (default: the model's)
        batch (int, optional): Batch when ``inputs`` is :obj:`None`. (default: :obj:`1`)
        seed (int, optional): Seed of the random input. (default: :obj:`0`)

    Returns:
        float: ``max |torch(x) - onnxruntime(x)|`` over all logits.
    """
    sess = onnx_session(path)
    if inputs is None:
        shape = sess.get_inputs()[0].shape
        C = int(shape[1])
        H, W = (int(size[0]), int(size[1])) if size is not None else (int(shape[2]), int(shape[3]))
        g = torch.Generator().manual_seed(seed)
        inputs = torch.randn(batch, C, H, W, generator=g)
    ref = model.eval().cpu().float()(inputs.cpu().float())
    ref = ref[0] if isinstance(ref, (tuple, list)) else ref
    out = sess.run(None, {sess.get_inputs()[0].name: inputs.cpu().float().numpy()})[0]
    return float((ref - torch.from_numpy(out)).abs().max())
