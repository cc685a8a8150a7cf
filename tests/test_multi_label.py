"""Multi-label targets (Open Images' "multiple label setting", paper §5): a RoI of class k is positive on
k and its ancestors; ACSL weighs every positive column 1 and applies the ξ rule elsewhere."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from acsl.losses import ACSL, SigmoidBCE, build_loss

C = 5
# Labels 1..5: 1 animal, 2 mammal (⊂ 1), 3 cat (⊂ 2 ⊂ 1), 4 vehicle, 5 car (⊂ 4).
ANCESTORS = [[], [1], [2, 1], [], [4]]


def _inputs(seed=0, n=30):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, C + 1, generator=g, dtype=torch.float64) * 2.5).requires_grad_(True)
    labels = torch.randint(0, C + 1, (n,), generator=g)
    return logits, labels


def _multi_hot(labels):
    y = F.one_hot(labels, C + 1).bool()
    for label, parents in enumerate(ANCESTORS, start=1):
        for parent in parents:
            y[labels == label, parent] = True
    return y


def test_multi_label_acsl_gradient_equals_its_closed_form():
    loss = ACSL(C, statistic_free=True, xi=0.7)
    loss.set_label_hierarchy(ANCESTORS)
    logits, labels = _inputs()
    value = loss(logits, labels)
    value.backward()
    p = torch.sigmoid(logits.detach())
    y = _multi_hot(labels)
    w = (y | (p >= 0.7)).double()  # every positive column 1, ξ rule on the others
    expected = -(w * (y * p.log() + (~y) * (1 - p).log())).sum() / len(labels)
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(logits.grad, w * (p - y.double()) / len(labels))
    cat_rows = labels == 3
    assert bool(y[cat_rows][:, [1, 2, 3]].all())  # a cat is positive for mammal and animal too


def test_multi_label_acsl_keeps_the_background_schedule():
    loss = ACSL(C, ["f", "f", "c", "r", "f"], xi=0.7)
    loss.set_label_hierarchy(ANCESTORS)
    logits, labels = _inputs(seed=1)
    mask = loss.weight_mask(logits.detach(), labels)
    background = labels == 0
    assert bool(mask[background][:, [0, 1, 2, 5]].all())  # frequent classes and the background column
    assert bool(mask[~background][_multi_hot(labels)[~background]].all())


def test_multi_label_bce_and_eql_use_the_ancestors():
    logits, labels = _inputs(seed=2)
    bce = SigmoidBCE(C)
    bce.set_label_hierarchy(ANCESTORS)
    expected = F.binary_cross_entropy_with_logits(logits, _multi_hot(labels).double(), reduction="sum") / len(labels)
    torch.testing.assert_close(bce(logits, labels), expected)
    eql = build_loss("eql", C, class_image_counts=[100] * C, class_instance_counts=[100] * C, num_images=100, lambda_=0.0)
    eql.set_label_hierarchy(ANCESTORS)
    y = _multi_hot(labels).double()
    y[:, 0] = 0
    weights = torch.ones_like(y)
    weights[:, 0] = 0
    expected = F.binary_cross_entropy_with_logits(logits, y, weight=weights, reduction="sum") / len(labels)
    torch.testing.assert_close(eql(logits, labels), expected)


def test_single_label_losses_refuse_a_hierarchy_and_bad_ancestors_are_named():
    with pytest.raises(ValueError, match="SoftmaxCE trains one positive column.*acsl, bce, eql"):
        build_loss("softmax_ce", C).set_label_hierarchy(ANCESTORS)
    with pytest.raises(ValueError, match="class 2 has ancestor 9"):
        SigmoidBCE(C).set_label_hierarchy([[], [9], [], [], []])
    loss = SigmoidBCE(C)
    loss.set_label_hierarchy(None)
    loss.set_label_hierarchy(ANCESTORS)
    assert loss.multi_label and "label_targets" not in loss.state_dict()  # derived from the hierarchy, not saved
    loss.set_label_hierarchy(None)
    logits, labels = _inputs()
    expected = F.binary_cross_entropy_with_logits(logits, F.one_hot(labels, C + 1).double(), reduction="sum") / len(labels)
    torch.testing.assert_close(loss(logits, labels), expected)
