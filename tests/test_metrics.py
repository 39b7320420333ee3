import math

import pytest
import torch

from gasgnn.metrics import ConfusionMatrix, confusion_matrix, metrics_from_matrix


def _reference(pred, target, C, ignore):
    """Independent per-class loops over plain Python lists: TP/FP/FN counted pixel by pixel."""
    p = pred.reshape(-1).tolist()
    t = target.reshape(-1).tolist()
    tp = [0] * C
    fp = [0] * C
    fn = [0] * C
    correct = counted = 0
    for pi, ti in zip(p, t):
        if ti == ignore:
            continue
        counted += 1
        if pi == ti:
            tp[ti] += 1
            correct += 1
        else:
            fp[pi] += 1
            fn[ti] += 1
    ious = []
    accs = []
    for c in range(C):
        u = tp[c] + fp[c] + fn[c]
        ious.append(tp[c] / u if u else math.nan)
        accs.append(tp[c] / (tp[c] + fn[c]) if tp[c] + fn[c] else math.nan)
    valid = [v for v in ious if not math.isnan(v)]
    valid_acc = [v for v in accs if not math.isnan(v)]
    return {
        "per_class_iou": ious,
        "miou": sum(valid) / len(valid),
        "pixel_acc": correct / counted,
        "mean_acc": sum(valid_acc) / len(valid_acc),
    }


def _close(a, b):
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) < 1e-12


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_independent_counts(seed):
    g = torch.Generator().manual_seed(seed)
    C = 5
    target = torch.randint(0, C, (3, 7, 9), generator=g)
    target[torch.rand(target.shape, generator=g) < 0.2] = 255
    target[target == 3] = 1  # class 3 never in target
    pred = torch.randint(0, C, target.shape, generator=g)
    pred[pred == 4] = 0  # class 4 never predicted
    if seed == 2:
        pred[pred == 3] = 2  # class 3 absent from both -> NaN, excluded from mIoU
    ref = _reference(pred, target, C, 255)

    cm = ConfusionMatrix(C)
    cm.update(pred[:2], target[:2]).update(pred[2:], target[2:])
    got = cm.compute()
    assert all(_close(a, b) for a, b in zip(got["per_class_iou"], ref["per_class_iou"]))
    for k in ("miou", "pixel_acc", "mean_acc"):
        assert _close(got[k], ref[k]), k
    assert got["pixels"] == int((target != 255).sum())
    if seed == 2:
        assert math.isnan(got["per_class_iou"][3])


def test_logits_equal_labels_and_functional():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 4, 5, 6, generator=g)
    target = torch.randint(0, 4, (2, 5, 6), generator=g)
    a = confusion_matrix(logits, target, 4)
    b = confusion_matrix(logits.argmax(1), target, 4)
    assert a.dtype == torch.long and torch.equal(a, b)
    assert int(a.sum()) == target.numel()
    # Row t, column p.
    m = confusion_matrix(torch.tensor([[[1]]]), torch.tensor([[[0]]]), 3)
    assert m[0, 1] == 1 and m.sum() == 1


def test_merge_reset_and_perfect():
    t = torch.tensor([[[0, 1], [2, 255]]])
    a, b = ConfusionMatrix(3), ConfusionMatrix(3)
    a.update(t.clamp(max=2), t)
    b.update(t.clamp(max=2), t)
    a.merge(b).merge(b.mat)
    assert int(a.mat.sum()) == 9
    r = a.compute()
    assert r["miou"] == 1.0 and r["pixel_acc"] == 1.0 and r["mean_acc"] == 1.0
    a.all_reduce()  # not distributed: no-op
    a.reset()
    assert int(a.mat.sum()) == 0 and math.isnan(a.compute()["miou"])
    with pytest.raises(ValueError, match="cannot merge"):
        a.merge(ConfusionMatrix(4))


def test_bad_input():
    with pytest.raises(ValueError, match="target labels"):
        confusion_matrix(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), 7), 3)
    with pytest.raises(ValueError, match="does not match"):
        confusion_matrix(torch.zeros(1, 2, 3, dtype=torch.long), torch.zeros(1, 2, 2, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="class names"):
        metrics_from_matrix(torch.eye(3, dtype=torch.long), ["a"])
