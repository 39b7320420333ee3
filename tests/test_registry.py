"""The one Registry class, and every registered name of every registry (timm's test_models style)."""

import pytest
import torch

from gasgnn import BUILDERS, GUIDES, HEADS, OPS, SearchSpace, build_guide, build_head, build_op
from gasgnn.data import DATASETS, build_dataset, eval_transform
from gasgnn.genotype import REFERENCE_NETS, reference_genotype
from gasgnn.ggm import CONVS, build_conv, guide_names
from gasgnn.registry import Registry, RegistryError
from gasgnn.space import build_edge_index
from gasgnn.testing import make_camvid_tree, make_cityscapes_tree, make_folder_tree


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


ALL = [OPS, HEADS, GUIDES, CONVS, BUILDERS, DATASETS, REFERENCE_NETS]


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


@pytest.mark.parametrize("name", sorted(REFERENCE_NETS))
def test_every_reference(name):
    ref = REFERENCE_NETS[name]
    if not ref.available:
        pytest.skip(f"needs {ref.requires}")
    if ref.genotype_fn is not None:
        g = reference_genotype(name, TINY)
        assert len(g) == TINY.num_cells


WRITERS = {"camvid": make_camvid_tree, "cityscapes": make_cityscapes_tree, "folder": make_folder_tree}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_dataset(name, tmp_path):
    kwargs = {"num_images": 2} if name == "synthetic" else {}
    root = None
    if name in WRITERS:
        root = tmp_path / name
        WRITERS[name](root)
    ds = build_dataset(name, root=root, transform=eval_transform(), **kwargs)
    image, mask = ds[0]
    assert image.dim() == 3 and mask.dim() == 2 and image.shape[1:] == mask.shape
