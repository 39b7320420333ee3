import pytest
import torch

from gasgnn import GASNet, SearchSpace, derive, random_genotype
from gasgnn.models import HEADS


@pytest.mark.parametrize("head", ["aspp", "ppm"])
@pytest.mark.parametrize("size", [(96, 128), (75, 101)])
def test_gasnet_heads_sizes(head, size):
    s = SearchSpace(num_cells=6, channels=8)
    g = derive(s, torch.randn(s.num_arch_nodes, s.num_ops))
    net = GASNet(g, head=head, head_channels=32).eval()
    with torch.no_grad():
        y = net(torch.randn(1, 3, *size))
    assert y.shape == (1, 11, *size)


def test_gasnet_trains_and_aux():
    s = SearchSpace(num_cells=4, channels=8, num_classes=5)
    net = GASNet(random_genotype(s), aux_head=True, head_channels=16)
    out, aux = net(torch.randn(2, 3, 64, 64))
    assert out.shape == aux.shape == (2, 5, 64, 64)
    (out.mean() + aux.mean()).backward()
    net.eval()
    assert net(torch.randn(1, 3, 64, 64)).shape == (1, 5, 64, 64)


def test_gasnet_uses_registry_ops():
    s = SearchSpace(num_cells=3, channels=8)
    g = random_genotype(s, torch.Generator().manual_seed(0))
    net = GASNet(g)
    assert len(net.cells[1].ops) == len(g.cells[1].edges)
    assert {"aspp", "ppm", "simple"} <= set(HEADS)
