"""GASNet.save_pretrained / from_pretrained: identical outputs, the model card, validation, the Hub path."""

import hashlib
import json
import sys
import types

import pytest
import torch

from gasgnn import GASNet, random_genotype
from gasgnn.models import (
    CARD_FIELDS,
    NOT_MEASURED,
    PRETRAINED_FILES,
    gasnet_spec,
    read_pretrained_config,
    save_pretrained_from_checkpoint,
)
from gasgnn.models.card import check_classes, check_metadata
from gasgnn.utils import MissingExtraError, atomic_torch_save

st = pytest.importorskip("safetensors.torch")

META = {"dataset": "camvid", "miou": 0.625, "train_device": "cuda:0", "device": "Intel Xeon 2 cores",
        "latency_backend": "onnxruntime", "latency_table_sha1": "ab" * 20, "input_size": [360, 480],
        "predicted_latency_ms": 12.3, "measured_latency_ms": 14.2}


def trained(space, head="aspp", aux=False, seed=2, **kw):
    """A tiny GASNet whose batch-norm statistics are not the identity (as after training)."""
    g = random_genotype(space, torch.Generator().manual_seed(seed))
    net = GASNet(g, space, head=head, head_channels=8, aux_head=aux, **kw)
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(torch.randn(2, 3, 32, 40) * 2 + 0.5)
    return net.eval()


@pytest.fixture
def saved(tiny_space, tmp_path):
    net = trained(tiny_space)
    return net, net.save_pretrained(tmp_path / "net")


@pytest.mark.parametrize("head,aux,kw", [("aspp", False, {}), ("ppm", False, {"bins": (1, 3)}),
                                         ("aspp", True, {"rates": (1, 2)}), ("ppm", True, {})])
def test_save_then_load_gives_identical_outputs(tiny_space, tmp_path, head, aux, kw):
    net = trained(tiny_space, head, aux, **kw)
    out = net.save_pretrained(tmp_path / "p")
    assert sorted(p.name for p in out.iterdir()) == sorted(set(PRETRAINED_FILES) - {"network.png"})
    back = GASNet.from_pretrained(out)
    assert not back.training and back.head_name == head and back.head_kwargs == json.loads(json.dumps(kw))
    assert (back.aux_index is not None) == aux and back.genotype == net.genotype and back.space == net.space
    x = torch.randn(2, 3, 36, 44)
    with torch.no_grad():
        ref = net(x)
        assert torch.equal(ref, back(x))  # bitwise, eval mode
    a, b = net.state_dict(), back.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # BN statistics and aux head too
    if aux:
        # aux=False drops the auxiliary head and still gives the same logits
        lean = GASNet.from_pretrained(out, aux=False)
        assert lean.aux_index is None and not any(k.startswith("aux.") for k in lean.state_dict())
        with torch.no_grad():
            assert torch.equal(lean(x), ref)
        # the auxiliary output, in training mode with the same dropout draws
        net.train(), back.train()
        torch.manual_seed(5)
        o1 = net(x)
        torch.manual_seed(5)
        o2 = back(x)
        assert torch.equal(o1[0], o2[0]) and torch.equal(o1[1], o2[1])


def test_card_names_the_genotype_hash_and_the_metadata(tiny_space, tmp_path):
    from gasgnn.runner import genotype_sha1

    net = trained(tiny_space)
    names = [f"class{i}" for i in range(tiny_space.num_classes)]
    pal = [[i, 2 * i, 3 * i] for i in range(tiny_space.num_classes)]
    out = net.save_pretrained(tmp_path / "p", classes=names, palette=pal, ignore_index=255, metadata=META)
    card = (out / "README.md").read_text()
    sha = net.genotype.sha1()
    assert sha == genotype_sha1(net.genotype)  # the hash a search's summary.json records
    assert f"`{sha}`" in card and json.loads((out / "config.json").read_text())["genotype_sha1"] == sha
    for text in ("camvid", "62.50 %", "cuda:0", "Intel Xeon 2 cores", "onnxruntime", "ab" * 20, "360x480",
                 "12.30 ms", "14.20 ms", "70.4 FPS", "class10", "| ignore index | 255 |", "library_name: gasgnn"):
        assert text in card, text
    assert NOT_MEASURED not in card
    wsha = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    assert wsha in card
    cfg = GASNet.from_pretrained(out).pretrained_config
    assert cfg["classes"] == {"names": names, "palette": pal, "ignore_index": 255}
    assert cfg["metadata"] == {k: META[k] for k in CARD_FIELDS}


def test_card_says_not_measured_for_unknown_fields(saved):
    net, out = saved
    card = (out / "README.md").read_text()
    # dataset, mIoU, trained on, device, backend, table hash, input size, predicted, measured
    assert card.count(NOT_MEASURED) == 9
    assert "Cell drawing: not included" in card and "draw=gasgnn.viz.draw_network" in card
    assert not (out / "network.png").exists()
    assert read_pretrained_config(out)["metadata"] == dict.fromkeys(CARD_FIELDS)


def test_card_drawing(tiny_space, tmp_path):
    from gasgnn.viz import draw_network

    net = trained(tiny_space)
    out = net.save_pretrained(tmp_path / "p", draw=draw_network)
    assert (out / "network.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![The derived cells](network.png)" in (out / "README.md").read_text()
    assert read_pretrained_config(out)["drawing"] == "network.png"

    def broken(genotype, path):
        raise RuntimeError("no fonts")

    with pytest.warns(UserWarning, match="no fonts"):
        out = net.save_pretrained(tmp_path / "q", draw=broken)
    assert "drawing failed: RuntimeError: no fonts" in (out / "README.md").read_text()
    GASNet.from_pretrained(out)  # the network itself is complete


def test_refuses_a_non_empty_directory_unless_overwrite(tiny_space, tmp_path, saved):
    net, out = saved
    other = trained(tiny_space, seed=7)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ValueError, match="not empty.*overwrite=True"):
        other.save_pretrained(out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    other.save_pretrained(out, overwrite=True)
    assert GASNet.from_pretrained(out).genotype == other.genotype
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporaries left
    # a folder of other files is never replaced, not even with overwrite
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_text("keep me")
    with pytest.raises(ValueError, match="not a pretrained network"):
        net.save_pretrained(run, overwrite=True)
    assert (run / "best.pt").read_text() == "keep me"
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        net.save_pretrained(f)
    empty = tmp_path / "empty"
    empty.mkdir()
    net.save_pretrained(empty)  # an empty directory is fine
    GASNet.from_pretrained(empty)


def test_a_failed_save_leaves_the_earlier_directory(tiny_space, saved, monkeypatch):
    import gasgnn.models.pretrained as pre

    net, out = saved
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def boom(*a, **k):
        raise RuntimeError("killed while writing the card")

    monkeypatch.setattr(pre, "render_card", boom)
    with pytest.raises(RuntimeError):
        trained(tiny_space, seed=9).save_pretrained(out, overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []


def _edit_config(out, **changes):
    cfg = json.loads((out / "config.json").read_text())
    cfg.update(changes)
    (out / "config.json").write_text(json.dumps(cfg))


def _rewrite_weights(out, state):
    data = st.save(state)
    (out / "model.safetensors").write_bytes(data)
    _edit_config(out, weights_sha256=hashlib.sha256(data).hexdigest())


def _drop_field(out, key):
    cfg = json.loads((out / "config.json").read_text())
    del cfg[key]
    (out / "config.json").write_text(json.dumps(cfg))


def _change_op(path):
    g = json.loads(path.read_text())
    e = g["cells"][0]["edges"][0]
    e["op"] = "max_pool_3x3" if e["op"] != "max_pool_3x3" else "skip_connect"
    path.write_text(json.dumps(g))


def _sd(out):
    return st.load((out / "model.safetensors").read_bytes())


BAD = {
    "config missing": (lambda o: (o / "config.json").unlink(), "config.json", FileNotFoundError),
    "config not json": (lambda o: (o / "config.json").write_text("{"), "not valid JSON", ValueError),
    "format": (lambda o: _edit_config(o, format="other"), "format: expected 'gasgnn-pretrained'", ValueError),
    "version": (lambda o: _edit_config(o, version=99), "version: unsupported 99", ValueError),
    "field missing": (lambda o: _drop_field(o, "head"), "missing field 'head'", ValueError),
    "field type": (lambda o: _edit_config(o, aux="yes"), "aux: expected bool", ValueError),
    "unknown head": (lambda o: _edit_config(o, head="fpn"), "head: ", ValueError),
    "head options": (lambda o: _edit_config(o, head_kwargs={"depth": 3}), "head_kwargs", ValueError),
    "classes": (lambda o: _edit_config(o, classes={"names": ["a", "b"]}), "classes.names: 2 names", ValueError),
    "metadata value": (lambda o: _edit_config(o, metadata={"miou": 62.5}), "metadata.miou", ValueError),
    "metadata field": (lambda o: _edit_config(o, metadata={"fps": 3}), "unknown field 'fps'", ValueError),
    "genotype missing": (lambda o: (o / "genotype.json").unlink(), "genotype.json: genotype file missing",
                         FileNotFoundError),
    "genotype changed": (lambda o: _change_op(o / "genotype.json"), "genotype_sha1", ValueError),
    "weights missing": (lambda o: (o / "model.safetensors").unlink(), "weights file missing", FileNotFoundError),
    "weights changed": (lambda o: (o / "model.safetensors").write_bytes((o / "model.safetensors").read_bytes()[:-8]),
                        "weights_sha256", ValueError),
    "shape": (lambda o: _edit_config(o, head_channels=16), "has shape", ValueError),
    "tensor missing": (lambda o: _rewrite_weights(o, {k: v for k, v in list(_sd(o).items())[1:]}),
                       "is missing", ValueError),
    "tensor extra": (lambda o: _rewrite_weights(o, {**_sd(o), "extra.weight": torch.zeros(2)}),
                     "unexpected tensor 'extra.weight'", ValueError),
    "not safetensors": (lambda o: _raw(o, b"garbage!" * 4), "not a readable safetensors file", ValueError),
}


def _raw(out, data):
    (out / "model.safetensors").write_bytes(data)
    _edit_config(out, weights_sha256=hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize("case", list(BAD))
def test_bad_directories_give_one_line_naming_file_and_field(saved, case):
    _, out = saved
    mutate, fragment, kind = BAD[case]
    mutate(out)
    with pytest.raises(kind) as e:
        GASNet.from_pretrained(out)
    msg = str(e.value)
    assert fragment in msg and "\n" not in msg
    assert str(out) in msg  # the file (under the directory) is named


def test_not_a_directory(tmp_path, saved):
    with pytest.raises(FileNotFoundError, match="pretrained directory not found"):
        GASNet.from_pretrained(tmp_path / "nope")
    with pytest.raises(ValueError, match="is a file"):
        GASNet.from_pretrained(saved[1] / "config.json")
    with pytest.raises(ValueError, match="aux is false"):
        GASNet.from_pretrained(saved[1], aux=True)


def test_hub_id_without_huggingface_hub(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails as if not installed
    with pytest.raises(ImportError) as e:
        GASNet.from_pretrained("someone/gas-camvid")
    msg = str(e.value)
    assert isinstance(e.value, (MissingExtraError, ValueError)) and "\n" not in msg
    assert "huggingface_hub is not installed" in msg and "gasgnn[hub]" in msg and "someone/gas-camvid" in msg


def test_hub_id_goes_through_snapshot_download(monkeypatch, tmp_path, saved):
    net, out = saved
    calls = []

    def snapshot_download(repo_id, **kw):
        calls.append((repo_id, kw))
        if repo_id == "someone/missing":
            raise RuntimeError("404 Client Error.\nRepository Not Found")
        return str(out)

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=snapshot_download))
    monkeypatch.chdir(tmp_path)
    back = GASNet.from_pretrained("someone/gas-camvid", revision="v1", local_files_only=True)
    assert calls[0][0] == "someone/gas-camvid" and calls[0][1]["revision"] == "v1"
    assert calls[0][1]["local_files_only"] is True and "model.safetensors" in calls[0][1]["allow_patterns"]
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(back(x), net(x))
    with pytest.raises(ValueError, match=r"Hub download failed \(RuntimeError: 404 Client Error.\)$"):
        GASNet.from_pretrained("someone/missing")
    # a local directory of that name wins over the Hub
    (tmp_path / "someone").mkdir()
    net.save_pretrained(tmp_path / "someone" / "local")
    GASNet.from_pretrained("someone/local")
    assert len(calls) == 2


def test_without_safetensors_a_clear_error_and_nothing_written(monkeypatch, tiny_space, tmp_path, saved):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(MissingExtraError, match=r"safetensors is not installed \(pip install 'gasgnn\[hub\]'\)"):
        trained(tiny_space).save_pretrained(tmp_path / "x")
    assert not (tmp_path / "x").exists()
    with pytest.raises(MissingExtraError, match="model.safetensors: safetensors is not installed"):
        GASNet.from_pretrained(saved[1])


def test_from_checkpoint_takes_what_the_run_knows(tiny_space, tmp_path):
    net = trained(tiny_space, aux=True)
    names = [f"c{i}" for i in range(tiny_space.num_classes)]
    ckpt = {"model": net.state_dict(), "spec": gasnet_spec(net.genotype, tiny_space.num_classes, "aspp", 8, True),
            "miou": 0.41, "config": {"device": "auto"},
            "dataset": {"name": "synthetic", "classes": names, "palette": [[1, 2, 3]] * len(names),
                        "ignore_index": 255, "num_classes": len(names)}}
    atomic_torch_save(ckpt, tmp_path / "best.pt")
    out = save_pretrained_from_checkpoint(tmp_path / "best.pt", tmp_path / "p", metadata={"train_device": "cpu"})
    back = GASNet.from_pretrained(out)
    cfg = back.pretrained_config
    assert cfg["aux"] and cfg["classes"]["names"] == names and cfg["classes"]["ignore_index"] == 255
    assert cfg["metadata"]["dataset"] == "synthetic" and cfg["metadata"]["miou"] == 0.41
    assert cfg["metadata"]["train_device"] == "cpu"
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(back(x), net(x))
    atomic_torch_save({**ckpt, "spec": {"kind": "reference", "name": "smp_unet_r18", "num_classes": 11}},
                      tmp_path / "ref.pt")
    with pytest.raises(ValueError, match="only GASNet checkpoints"):
        save_pretrained_from_checkpoint(tmp_path / "ref.pt", tmp_path / "r")


def test_metadata_and_classes_validation():
    assert check_metadata({"miou": 1, "input_size": (3, 4)})["input_size"] == [3, 4]
    for bad, frag in [({"miou": 62.0}, "not a fraction"), ({"measured_latency_ms": -1}, "positive"),
                      ({"predicted_latency_ms": float("nan")}, "finite"), ({"input_size": [3]}, "[H, W]"),
                      ({"dataset": ""}, "non-empty string"), ({"speed": 1}, "unknown field 'speed'")]:
        with pytest.raises(ValueError, match=frag.replace("[", r"\[").replace("]", r"\]")):
            check_metadata(bad)
    with pytest.raises(ValueError, match="ignore_index: 1 is a class index"):
        check_classes(3, ignore_index=1)
    with pytest.raises(ValueError, match="palette: every colour"):
        check_classes(2, palette=[[0, 0, 0], [0, 0, 300]])
