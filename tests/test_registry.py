"""The one Registry class, and every registered name of every registry (timm's test_models style)."""

import numpy as np
import pytest
import torch

from gasgnn import BUILDERS, GUIDES, HEADS, OPS, SearchSpace, build_guide, build_head, build_op
from gasgnn.data import DATASETS, build_dataset, dataset_fixture, eval_transform
from gasgnn.genotype import REFERENCE_NETS, reference_genotype
from gasgnn.ggm import CONVS, build_conv, guide_names
from gasgnn.latency import LATENCY_BACKENDS, make_backend
from gasgnn.registry import Registry, RegistryError, load_plugin
from gasgnn.runner import LOGGERS
from gasgnn.space import SPACE_PRESETS, build_edge_index, preset_space, register_space_preset


def test_register_get_build_names_meta():
    reg = Registry("block")

    @reg.register("double", cost=2)
    def double(x):
        return 2 * x

    reg.register("triple", lambda x: 3 * x)
    assert reg.build("double", 21) == 42 and reg["triple"](2) == 6
    assert reg.names() == ["double", "triple"] and len(reg) == 2 and "double" in reg and "nope" not in reg
    assert reg.meta("double") == {"cost": 2}
    assert reg.get("nope", None) is None


def test_duplicates_refused_unless_overwrite_and_one_error_text():
    reg = Registry("head")
    reg.register("a", 1)
    with pytest.raises(RegistryError, match="head 'a' is already registered"):
        reg.register("a", 2)
    reg.register("a", 2, overwrite=True)
    assert reg["a"] == 2
    for lookup in (lambda: reg["zz"], lambda: reg.get("zz"), lambda: reg.build("zz")):
        with pytest.raises(KeyError, match=r"unknown head 'zz'; registered: a$"):
            lookup()
    assert reg.remove("a") == 2 and len(reg) == 0


def test_normalized_names():
    reg = Registry("dataset", normalize=str.lower)
    reg.register("CamVid", 1)
    assert "camvid" in reg and reg["CAMVID"] == 1 and reg.names() == ["camvid"]


ALL = [OPS, HEADS, GUIDES, CONVS, BUILDERS, DATASETS, REFERENCE_NETS, SPACE_PRESETS, LATENCY_BACKENDS, LOGGERS]


@pytest.mark.parametrize("registry", ALL, ids=lambda r: r.kind)
def test_every_registry_is_a_registry(registry):
    assert isinstance(registry, Registry)
    with pytest.raises(KeyError, match=f"unknown {registry.kind}"):
        registry["no-such-name"]


TINY = SearchSpace(num_cells=3, num_nodes=2, reduction_cells=(1,), channels=4, input_size=(16, 16))


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("stride", [1, 2])
def test_every_op(name, stride):
    op = build_op(name, 4, stride=stride)
    y = op(torch.randn(2, 4, 8, 8))
    assert y.shape == (2, 4, 8 // stride, 8 // stride)
    if OPS[name].factory.__module__.startswith("gasgnn."):  # other tests register ops of their own
        assert OPS[name].label, "a built-in op has a short label for the drawings"


@pytest.mark.parametrize("name", sorted(SPACE_PRESETS))
def test_every_space_preset(name):
    space = preset_space(name)
    assert SearchSpace.from_dict(space.to_dict()) == space
    assert {k: getattr(space, k) for k in SPACE_PRESETS[name]} == {
        k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in SPACE_PRESETS[name].items()}
    assert SPACE_PRESETS.meta(name)["description"]


def test_a_bad_space_preset_is_refused_by_field(clean_registries):
    with pytest.raises(ValueError, match="space preset 'bad': SearchSpace.channels"):
        register_space_preset("bad", "odd channels", channels=3)
    with pytest.raises(ValueError, match="space preset 'bad2'.*unexpected keyword argument 'cells'"):
        register_space_preset("bad2", cells=3)
    assert "bad" not in SPACE_PRESETS


PLUGIN = """
from gasgnn.space import ReLUConvBN, register_op

@register_op("plugin_conv_1x1", receptive_field=1, label="c1")
def _conv(C, stride, affine):
    return ReLUConvBN(C, C, 1, stride, 0, affine=affine)
"""


def test_load_plugin_by_file_and_by_module_name(tmp_path, monkeypatch, clean_registries):
    path = tmp_path / "my_plugin.py"
    path.write_text(PLUGIN)
    mod = load_plugin(str(path))
    assert OPS["plugin_conv_1x1"].short_label == "c1" and mod.__name__ == "my_plugin"
    assert load_plugin(str(path)) is mod  # once: no second registration
    assert load_plugin("my_plugin") is mod  # the module name now resolves to it
    other = tmp_path / "sub" / "my_plugin.py"
    other.parent.mkdir()
    other.write_text("")
    with pytest.raises(ValueError, match="the module name 'my_plugin' is taken"):
        load_plugin(str(other))
    for bad, msg in [(str(tmp_path / "nope.py"), "no such file"), (str(tmp_path / "x.txt"), "must end in .py"),
                     ("no_such_module_xyz", "no module named 'no_such_module_xyz'"), ("", "expected a module")]:
        with pytest.raises(ValueError, match=msg):
            load_plugin(bad)


def test_load_plugin_finds_a_module_in_the_working_directory(tmp_path, monkeypatch, clean_registries):
    import sys

    (tmp_path / "cwd_plugin.py").write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert load_plugin("cwd_plugin").__name__ == "cwd_plugin" and "plugin_conv_1x1" in OPS


def test_a_failing_plugin_leaves_no_module_behind(tmp_path, clean_registries):
    import sys

    path = tmp_path / "broken_plugin.py"
    path.write_text("import no_such_dependency_xyz\n")
    with pytest.raises(ModuleNotFoundError):  # the plugin's own error, unchanged
        load_plugin(str(path))
    assert "broken_plugin" not in sys.modules


@pytest.mark.parametrize("name", sorted(HEADS))
def test_every_head(name):
    head = build_head(name, 8, 5).eval()
    assert head(torch.randn(1, 8, 8, 8)).shape[:2] == (1, 5)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_builder(name):
    ei = build_edge_index(name, TINY)
    n = TINY.num_arch_nodes
    assert ei.dtype == torch.long and ei.size(0) == 2 and ei.size(1) > 0 and int(ei.max()) < n


@pytest.mark.parametrize("name", guide_names())
def test_every_guide(name):
    guide = build_guide(name, TINY)
    alpha = TINY.init_alpha().requires_grad_()
    out = guide(alpha, TINY.arch_graph(alpha))
    assert out.shape == alpha.shape and torch.isfinite(out).all()
    out.sum().backward()
    assert alpha.grad is not None


@pytest.mark.parametrize("name", sorted(CONVS))
def test_every_conv(name):
    conv = build_conv(name, 8, 8, hidden_channels=8)
    x, ei = torch.randn(5, 8), torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    assert conv(x, ei).shape == (5, 8)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "torch-compile" else n
                                  for n in sorted(LATENCY_BACKENDS)])
def test_every_latency_backend(name):
    conv = torch.nn.Conv2d(4, 4, 3, padding=1).eval()
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        run = make_backend(name).prepare(conv, (x,))
        with torch.inference_mode():
            run()


@pytest.mark.parametrize("name", sorted(REFERENCE_NETS))
def test_every_reference(name):
    ref = REFERENCE_NETS[name]
    if not ref.available:
        pytest.skip(f"needs {ref.requires}")
    if ref.genotype_fn is not None:
        g = reference_genotype(name, TINY)
        assert len(g) == TINY.num_cells


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_dataset(name, tmp_path, monkeypatch):
    # Built from its own registered fixture (a dataset that reads files must register one) and nothing
    # else: no default root ($GASGNN_CAMVID) stands in for a missing fixture.
    monkeypatch.delenv("GASGNN_CAMVID", raising=False)
    writer = dataset_fixture(name)
    root = writer(tmp_path / name) if writer is not None else None
    ds = build_dataset(name, root=root, transform=eval_transform())
    image, mask = ds[0]
    assert image.dim() == 3 and mask.dim() == 2 and image.shape[1:] == mask.shape
    assert int(mask.max()) < ds.num_classes or int(mask.max()) == ds.ignore_index


@pytest.mark.parametrize("name", sorted(LOGGERS))
def test_every_logger(name, tmp_path):
    from gasgnn.runner import build_loggers

    try:
        (lg,) = build_loggers([name], tmp_path, "search")
    except ValueError as e:
        assert "not installed" in str(e)  # an optional extra: the one line names it
        pytest.skip(str(e))
    lg.start([])
    lg.log(1, {"train_loss": 1.5, "epoch": 1}, {"x": np.zeros((8, 8, 3), dtype=np.uint8)} if lg.wants_images else None)
    lg.close()
