"""gasgnn.utils: the per-step non-finite check."""

import torch
from torch import nn

from gasgnn.utils import nonfinite_state


def _net(n: int) -> nn.Module:
    return nn.Sequential(*[nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)) for _ in range(n)])


def test_nonfinite_state_names_what_is_off():
    net, guide = _net(3), nn.Linear(2, 2)
    assert nonfinite_state(net) == [] and nonfinite_state(net=net, guide=guide) == []
    with torch.no_grad():
        net[1][1].running_var[0] = float("nan")  # a buffer, not only parameters
        guide.weight[0, 0] = float("-inf")
    assert nonfinite_state(net) == ["1.1.running_var"]
    assert nonfinite_state(net=net, guide=guide) == ["net.1.1.running_var", "guide.weight"]
    assert nonfinite_state(net=net, guide=guide, limit=1) == ["net.1.1.running_var"]


def test_nonfinite_state_mixed_dtypes():
    net = _net(2)
    net[1].half()
    assert nonfinite_state(net) == []
    with torch.no_grad():
        net[1][0].weight[1, 1] = float("inf")
    assert nonfinite_state(net) == ["1.0.weight"]


def _top_level_ops(n: int) -> int:
    net = _net(n)
    nonfinite_state(net)  # warm-up
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        nonfinite_state(net)
    # Top-level operator calls stand for kernel launches on a GPU (a per-tensor check makes two per tensor).
    return sum(1 for e in prof.events() if e.cpu_parent is None and e.name.startswith("aten::"))


def test_nonfinite_check_costs_a_constant_number_of_launches():
    few, many = _top_level_ops(4), _top_level_ops(100)  # 24 and 600 tensors
    assert few == many and few <= 10, (few, many)
