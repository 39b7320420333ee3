"""ONNX export of trained networks, with an ONNX Runtime parity check.

The export itself (:func:`export_onnx`, :func:`make_exportable`, :class:`ExplicitAdaptiveAvgPool2d`) and
the sessions (:func:`onnx_session`) live in :mod:`gasgnn.latency.onnx_runtime`, which the ``onnxruntime``
latency backend shares; this module adds the parity check of an exported file against PyTorch.

Example::

    from gasgnn.train import export_onnx, onnx_parity

    export_onnx(model, "model.onnx", size=(360, 480))
    print(onnx_parity(model, "model.onnx"))   # largest |torch - onnxruntime|
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gasgnn.latency import onnx_session

__all__ = ["onnx_parity"]


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
