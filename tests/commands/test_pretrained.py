"""``gasgnn export --format pretrained`` and the pretrained directory ``gasgnn train`` writes, end to end."""

import json
import sys

import pytest
import torch

from gasgnn import GASNet, random_genotype
from gasgnn.cli import main
from gasgnn.latency import LatencyTable
from gasgnn.models import load_model
from gasgnn.runner import table_sha1

from .conftest import SPACE

pytest.importorskip("safetensors")

TRAIN = ["train", "--genotype", "hand_sep", "--data", "synthetic", "--data-arg", "num_images=4",
         "--data-arg", "size=[32,32]", "--crop", "32", "32", "--epochs", "1", "--batch-size", "2",
         "--head-channels", "8", "--workers", "0", "--no-progress"]


def _err(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def _same_outputs(a, b, size=(32, 32)):
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        return torch.equal(a.eval()(x), b.eval()(x))


def test_export_pretrained_with_a_latency_table(tmp_path, table_file, capsys):
    g = random_genotype(SPACE, torch.Generator().manual_seed(3))
    g.save(tmp_path / "g.json")
    ref, spec = load_model(genotype=g)
    torch.save(ref.state_dict(), tmp_path / "w.pt")
    out = tmp_path / "p"
    args = ["export", "--genotype", str(tmp_path / "g.json"), "--weights", str(tmp_path / "w.pt"), "--format",
            "pretrained", "--out", str(out), "--latency-table", str(table_file), "--meta", "dataset=camvid",
            "--meta", "measured_latency_ms=3.5", "--no-drawing", "--json"]
    assert main(args) == 0
    res = json.loads(capsys.readouterr().out)
    table = LatencyTable.load(table_file)
    pred = table.predict(g, head="aspp", space=ref.space, head_channels=128)
    assert res["genotype_sha1"] == g.sha1() and res["files"] == ["README.md", "config.json", "genotype.json",
                                                                 "model.safetensors"]
    m = res["metadata"]
    assert m["latency_table_sha1"] == table_sha1(table) and m["predicted_latency_ms"] == pytest.approx(pred)
    assert m["device"] == table.meta["device_name"] and m["latency_backend"] == "torch"
    assert m["dataset"] == "camvid" and m["measured_latency_ms"] == 3.5 and m["input_size"] == [32, 32]
    card = (out / "README.md").read_text()
    assert g.sha1() in card and table_sha1(table) in card and f"{pred:.2f} ms" in card
    assert _same_outputs(GASNet.from_pretrained(out), ref)
    # a second export refuses the directory, --overwrite replaces it
    assert main(args) == 2
    assert "--overwrite" in _err(capsys)
    assert main([*args[:-2], "--meta", "miou=0.5", "--overwrite"]) == 0
    capsys.readouterr()
    assert GASNet.from_pretrained(out).pretrained_config["metadata"]["miou"] == 0.5


def test_export_pretrained_refusals(tmp_path, capsys):
    g = ["--genotype", "hand_sep", "--num-classes", "3", "--head-channels", "8"]
    for extra, frag in [(["--format", "pretrained", "--size", "32", "32"], "--size goes with --format onnx"),
                        (["--meta", "miou=0.5"], "--format pretrained"),
                        (["--format", "pretrained", "--meta", "miou"], "--meta expects KEY=VALUE"),
                        (["--format", "pretrained", "--meta", "miou=62"], "metadata.miou"),
                        (["--format", "pretrained", "--meta", "speed=3"], "unknown field 'speed'")]:
        assert main(["export", *g, "--out", str(tmp_path / "o"), *extra]) == 2, extra
        assert frag in _err(capsys), extra
    assert not (tmp_path / "o").exists()


def test_train_writes_a_pretrained_network(tmp_path, capsys):
    out = tmp_path / "t"
    assert main([*TRAIN, "--aux", "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["pretrained"] == str(out / "pretrained")
    net = GASNet.from_pretrained(out / "pretrained")
    cfg = net.pretrained_config
    best = torch.load(out / "best.pt", weights_only=False)
    assert cfg["aux"] and cfg["metadata"]["dataset"] == "synthetic" and cfg["metadata"]["train_device"] == "cpu"
    assert cfg["metadata"]["miou"] == pytest.approx(best["miou"])
    assert cfg["classes"]["names"] == best["dataset"]["classes"] and cfg["classes"]["ignore_index"] == 255
    assert _same_outputs(net, load_model(checkpoint=out / "best.pt")[0])
    card = (out / "pretrained" / "README.md").read_text()
    assert net.genotype.sha1() in card and "synthetic" in card and "network.png" in card
    assert (out / "pretrained" / "network.png").is_file()
    # a resumed run rewrites its own pretrained directory from the new best.pt
    # export --checkpoint gives the same network and card facts
    assert main(["export", "--checkpoint", str(out / "best.pt"), "--format", "pretrained", "--out",
                 str(tmp_path / "e"), "--no-drawing"]) == 0
    assert "genotype sha1" in capsys.readouterr().out
    ex = GASNet.from_pretrained(tmp_path / "e")
    assert ex.pretrained_config["classes"] == cfg["classes"] and ex.pretrained_config["aux"]
    assert ex.pretrained_config["metadata"]["dataset"] == "synthetic" and _same_outputs(ex, net)
    (out / "pretrained" / "config.json").write_text("{}")  # so the rewrite is seen
    assert main([*TRAIN, "--aux", "--out", str(out), "--resume", "--epochs", "2", "--allow-changes"]) == 0
    assert "pretrained network in" in capsys.readouterr().out
    again = GASNet.from_pretrained(out / "pretrained")
    best = torch.load(out / "best.pt", weights_only=False)
    assert again.pretrained_config["metadata"]["miou"] == pytest.approx(best["miou"])
    assert _same_outputs(again, load_model(checkpoint=out / "best.pt")[0])


def test_train_without_safetensors_still_completes(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    out = tmp_path / "t"
    assert main([*TRAIN, "--val-split", "none", "--out", str(out)]) == 0
    err = _err(capsys)
    assert "pretrained not written" in err and "gasgnn[hub]" in err
    assert (out / "best.pt").is_file() and not (out / "pretrained").exists()
