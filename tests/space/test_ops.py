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
