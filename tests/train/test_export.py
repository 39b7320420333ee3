import json

import pytest
import torch
from torch import nn

from gasgnn import GASNet, random_genotype
from gasgnn.train import ExplicitAdaptiveAvgPool2d, export_onnx, make_exportable, onnx_parity

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture
def trained_like(tiny_space):
    """A tiny GASNet whose batch-norm statistics are not the identity (as after training)."""
    g = random_genotype(tiny_space, torch.Generator().manual_seed(2))

    def make(head):
        net = GASNet(g, tiny_space, head=head, head_channels=8)
        net.train()
        with torch.no_grad():
            for _ in range(3):
                net(torch.randn(2, 3, 36, 52) * 2 + 0.5)
        return net.eval()

    return g, make


@pytest.mark.parametrize("size", [(6, 6), (7, 11), (13, 5), (2, 3)])
@pytest.mark.parametrize("bins", [1, 2, 3, 6, (2, 3)])
def test_explicit_pool_equals_adaptive(size, bins):
    x = torch.randn(2, 4, *size)
    ref = nn.AdaptiveAvgPool2d(bins)(x)
    out = ExplicitAdaptiveAvgPool2d(bins)(x)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)


def test_make_exportable_keeps_outputs(trained_like):
    _, make = trained_like
    net = make("ppm")
    ex = make_exportable(net)
    assert not any(isinstance(m, nn.AdaptiveAvgPool2d) for m in ex.modules())
    assert any(isinstance(m, nn.AdaptiveAvgPool2d) for m in net.modules())  # original untouched
    x = torch.randn(1, 3, 36, 52)
    with torch.no_grad():
        torch.testing.assert_close(ex(x), net(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("head,dynamic", [("aspp", False), ("ppm", True)])
def test_onnx_parity(trained_like, tmp_path, head, dynamic):
    _, make = trained_like
    net = make(head)
    path = export_onnx(net, tmp_path / f"{head}.onnx", size=(36, 52), dynamic_batch=dynamic)
    assert path.is_file()
    diff = onnx_parity(net, path, batch=2 if dynamic else 1)
    assert diff < 1e-4
    # The check is sensitive: different weights are caught.
    other = make(head)
    with torch.no_grad():
        next(other.parameters()).add_(0.1)
    assert onnx_parity(other, path) > 1e-3


def test_cli_export_json(trained_like, tmp_path, capsys):
    from gasgnn.cli import main

    g, _ = trained_like
    gp = tmp_path / "g.json"
    g.save(gp)
    out = tmp_path / "m.onnx"
    rc = main(
        [
            "export",
            "--genotype",
            str(gp),
            "--head",
            "ppm",
            "--head-channels",
            "8",
            "--format",
            "onnx",
            "--out",
            str(out),
            "--size",
            "32",
            "48",
            "--json",
        ]
    )
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["parity_ok"] is True and res["max_abs_diff"] < 1e-4 and res["size"] == [32, 48]
    assert out.is_file() and res["bytes"] == out.stat().st_size
