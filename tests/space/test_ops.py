import pytest
import torch
from torch import nn

from gasgnn.space import GAS_OPS, OPS, FactorizedReduce, build_op, get_op, register_op


@pytest.mark.parametrize("name", GAS_OPS)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [(16, 16), (15, 11)])
def test_op_shapes(name, stride, size):
    op = build_op(name, 8, stride)
    y = op(torch.randn(2, 8, *size))
    assert y.shape == (2, 8, -(-size[0] // stride), -(-size[1] // stride))


def test_none_is_zero_and_metadata():
    assert build_op("none", 4, 2)(torch.randn(1, 4, 8, 8)).abs().sum() == 0
    assert {o for o in GAS_OPS if OPS[o].light} == {"none", "skip_connect", "max_pool_3x3"}
    assert {o for o in GAS_OPS if OPS[o].large_rf} == {"dil_conv_3x3_d4", "dil_conv_3x3_d8"}
    assert [OPS[o].dilation for o in GAS_OPS[-3:]] == [2, 4, 8]
    assert OPS["dil_conv_3x3_d8"].receptive_field == 17


def test_register_custom_op():
    @register_op("test_conv_1x1", receptive_field=1, overwrite=True)
    def _f(C, stride, affine):
        return nn.Conv2d(C, C, 1, stride)

    assert get_op("test_conv_1x1").receptive_field == 1
    assert build_op("test_conv_1x1", 4, 2)(torch.randn(1, 4, 8, 8)).shape == (1, 4, 4, 4)
    with pytest.raises(KeyError, match="already registered"):
        register_op("test_conv_1x1")(_f)
    OPS.remove("test_conv_1x1")


def test_errors():
    with pytest.raises(KeyError, match="unknown op 'nope'"):
        build_op("nope", 4)
    with pytest.raises(ValueError, match="stride"):
        build_op("conv_3x3", 4, 3)
    with pytest.raises(ValueError, match="even"):
        FactorizedReduce(4, 5)


DARTS_FAMILY = ("avg_pool_3x3", "sep_conv_5x5", "dil_conv_5x5", "sep_conv_7x7", "conv_7x1_1x7")


@pytest.mark.parametrize("name", DARTS_FAMILY)
@pytest.mark.parametrize("stride", [1, 2])
def test_darts_family_op_shapes(name, stride):
    y = build_op(name, 6, stride)(torch.randn(1, 6, 15, 11))
    assert y.shape == (1, 6, -(-15 // stride), -(-11 // stride))


def test_darts_family_metadata_and_structure():
    from gasgnn.space import DARTS_OPS

    assert set(DARTS_FAMILY) <= set(OPS) and set(DARTS_OPS) <= set(OPS)
    assert {o for o in DARTS_OPS if OPS[o].light} == {"none", "max_pool_3x3", "avg_pool_3x3", "skip_connect"}
    assert {o: OPS[o].receptive_field for o in DARTS_FAMILY} == {
        "avg_pool_3x3": 3, "sep_conv_5x5": 9, "dil_conv_5x5": 9, "sep_conv_7x7": 13, "conv_7x1_1x7": 7}
    assert OPS["dil_conv_5x5"].dilation == 2 and not OPS["dil_conv_5x5"].large_rf
    # avg pool as DARTS: borders are not diluted by the padding.
    assert torch.allclose(build_op("avg_pool_3x3", 1, 1)(torch.ones(1, 1, 4, 4)), torch.ones(1, 1, 4, 4))
    convs = [m for m in build_op("dil_conv_5x5", 4, 1).modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].kernel_size == (5, 5) and convs[0].dilation == (2, 2)
    convs = [m for m in build_op("conv_7x1_1x7", 4, 2).modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(1, 7), (7, 1)]
    for name, k in (("sep_conv_5x5", 5), ("sep_conv_7x7", 7)):
        depthwise = [m for m in build_op(name, 4, 1).modules() if isinstance(m, nn.Conv2d) and m.groups == 4]
        assert [m.kernel_size for m in depthwise] == [(k, k)] * 2
