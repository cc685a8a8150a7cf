"""Seesaw Loss (Wang et al. 2021) and Balanced Group Softmax (Li et al. 2020): limiting cases, the
re-weighted softmax's closed-form gradient, BAGS's groups, "others" sampling and test-time scores."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from acsl.layers import CosineClassifier, build_classifier_layer
from acsl.losses import BalancedGroupSoftmax, SeesawLoss, build_loss
from acsl.losses.bags import group_classes, parse_bins

C = 6
INSTANCES = [1, 4, 20, 60, 400, 2500]


def _inputs(columns: int, n: int = 40, seed: int = 0, background_share: float = 0.4):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, columns, generator=g, dtype=torch.float64) * 2).requires_grad_(True)
    labels = torch.randint(1, C + 1, (n,), generator=g)
    labels[torch.rand(n, generator=g) < background_share] = 0
    return logits, labels


def test_seesaw_with_p_q_zero_and_no_objectness_is_softmax_ce():
    loss = SeesawLoss(C, p=0.0, q=0.0, objectness=False, cosine=False)
    logits, labels = _inputs(C + 1)
    torch.testing.assert_close(loss(logits, labels), F.cross_entropy(logits, labels))
    assert isinstance(build_classifier_layer(loss.classifier_spec, 8), torch.nn.Linear)


def test_seesaw_gradient_equals_the_reweighted_softmax():
    """∂L/∂z_j = (σ̂_j − y_j) / N with σ̂_j = S_ij e^{z_j} / Σ_k S_ik e^{z_k} (S fixed: counts and σ detached)."""
    loss = SeesawLoss(C, p=0.8, q=2.0, objectness=False, cosine=False)
    loss.counts.copy_(torch.tensor([500.0, *INSTANCES], dtype=torch.float64))
    logits, labels = _inputs(C + 1, seed=3)
    counts_before = loss.counts.clone()
    loss.eval()  # no counting: the factors below use the same counts
    value = loss(logits, labels)
    value.backward()
    z = logits.detach()
    n = counts_before.clamp_min(1)
    ratio_n = n.unsqueeze(0) / n[labels].unsqueeze(1)
    ratio_n[:, 0] = 1  # without objectness the background column is left out of the mitigation
    ratio_n[labels == 0] = 1
    mitigation = ratio_n.clamp_max(1).pow(0.8)
    sigma = torch.softmax(z, 1)
    ratio = sigma / sigma.gather(1, labels.unsqueeze(1)).clamp_min(1e-2)
    compensation = ratio.clamp_min(1).pow(2.0)
    factors = (mitigation * compensation).scatter(1, labels.unsqueeze(1), 1.0)
    weighted = factors * z.exp()
    expected_p = weighted / weighted.sum(1, keepdim=True)
    y = F.one_hot(labels, C + 1).double()
    torch.testing.assert_close(value, -(expected_p * y).sum(1).log().mean())
    torch.testing.assert_close(logits.grad, (expected_p - y) / len(labels))
    # A tail class's negative gradient from a head-class RoI is mitigated: factor < 1 only where N_j < N_i.
    assert bool((mitigation <= 1).all()) and bool((mitigation < 1).any())


def test_seesaw_counts_accumulate_online_and_objectness_layout():
    loss = SeesawLoss(C)  # objectness and the cosine classifier by default
    assert loss.num_logits == C + 2 and isinstance(build_classifier_layer(loss.classifier_spec, 8), CosineClassifier)
    logits, labels = _inputs(C + 2)
    loss(logits, labels)
    loss(logits, labels)
    expected = torch.bincount(labels[labels > 0] - 1, minlength=C).double() * 2
    torch.testing.assert_close(loss.counts, expected)
    scores = loss.scores(logits.detach())
    assert scores.shape == (len(labels), C + 1)
    objectness = torch.softmax(logits.detach()[:, [0, C + 1]], 1)
    torch.testing.assert_close(scores[:, 0], objectness[:, 0])
    torch.testing.assert_close(scores.sum(1), torch.ones(len(labels), dtype=torch.float64))
    # The objectness term alone: with p = q = 0, the class term is softmax CE over the classes of foreground RoIs.
    plain = SeesawLoss(C, p=0.0, q=0.0)
    fg = labels > 0
    expected_value = (F.cross_entropy(logits[fg, 1:C + 1], labels[fg] - 1, reduction="sum")
                      + F.cross_entropy(logits[:, [0, C + 1]], fg.long(), reduction="sum")) / len(labels)
    torch.testing.assert_close(plain(logits, labels), expected_value)


def test_cosine_classifier_is_scaled_cosine_similarity():
    torch.manual_seed(0)  # the inputs, so the test does not depend on the test order's random state
    layer = CosineClassifier(5, 3, temperature=20.0)
    x = torch.randn(4, 5)
    expected = 20 * F.normalize(x, dim=1) @ F.normalize(layer.weight, dim=1).T + layer.bias
    torch.testing.assert_close(layer(x), expected, atol=1e-4, rtol=1e-4)
    assert layer(x).abs().max() <= 20 + 1e-3


def test_bags_groups_follow_the_bins():
    assert parse_bins("0,10,100,1000") == (0, 10, 100, 1000)
    assert group_classes(INSTANCES, (0, 10, 100, 1000)) == [[1, 2], [3, 4], [5], [6]]
    assert group_classes(INSTANCES, (0, 50)) == [[1, 2, 3], [4, 5, 6]]  # Table 1's two groups
    assert group_classes(INSTANCES, (0, 1, 5000)) == [[1, 2, 3, 4, 5, 6]]  # empty groups are dropped
    for bad in ("1,10", "0,10,5", "0,x"):
        with pytest.raises(ValueError, match="BAGS bins"):
            parse_bins(bad)


def _bags(**options):
    return build_loss("bags", C, class_image_counts=[1] * C, class_instance_counts=INSTANCES, num_images=10, **options)


def test_bags_without_others_subsampling_is_a_sum_of_group_softmax_ces():
    # Every "others" RoI takes part, and both groups have positives here, so every group's average runs
    # over all N RoIs: Σ_groups Σ_RoIs CE / N.
    loss = _bags(bins="0,50", others_ratio=1e9)
    assert loss.num_logits == C + 1 + 1 + 2
    logits, labels = _inputs(loss.num_logits, seed=5)
    assert ((labels >= 1) & (labels <= 3)).any() and (labels >= 4).any()
    z = logits.detach()
    expected = F.cross_entropy(z[:, [C + 1, 0]], (labels == 0).long(), reduction="sum")
    for g, members in enumerate(([1, 2, 3], [4, 5, 6]), start=1):
        columns = [C + 1 + g, *members]
        target = torch.zeros_like(labels)
        for position, label in enumerate(members, start=1):
            target[labels == label] = position
        expected = expected + F.cross_entropy(z[:, columns], target, reduction="sum")
    torch.testing.assert_close(loss(logits, labels), expected / len(labels))


def test_bags_samples_at_most_ratio_times_positives_as_others():
    loss = _bags(bins="0,50", others_ratio=2.0, seed=1)
    labels = torch.tensor([0] * 30 + [1, 5])  # one positive per group
    logits = torch.zeros(len(labels), loss.num_logits, dtype=torch.float64, requires_grad=True)
    loss(logits, labels).backward()
    # Zero logits: each RoI taking part in a group gives that group's columns a non-zero gradient.
    for g, members in enumerate(([1, 2, 3], [4, 5, 6]), start=1):
        taking_part = logits.grad[:, [C + 1 + g, *members]].abs().sum(1) > 0
        assert int(taking_part.sum()) == 1 + 2  # its positive and 2 × 1 "others"
    assert bool((logits.grad[:, [C + 1, 0]].abs().sum(1) > 0).all())  # group 0 sees every RoI


def test_bags_scores_multiply_in_group_probability_by_objectness():
    loss = _bags(bins="0,50")
    logits, _ = _inputs(loss.num_logits)
    z = logits.detach()
    scores = loss.scores(z)
    background = torch.softmax(z[:, [C + 1, 0]], 1)
    torch.testing.assert_close(scores[:, 0], background[:, 1])
    within = torch.softmax(z[:, [C + 2, 1, 2, 3]], 1)[:, 1:]
    torch.testing.assert_close(scores[:, 1:4], within * background[:, :1])


def test_bags_others_draw_is_reproducible_and_saved_with_the_state():
    first, second = _bags(seed=4, others_ratio=1.0), _bags(seed=4, others_ratio=1.0)
    logits, labels = _inputs(first.num_logits, seed=2, background_share=0.8)
    assert torch.equal(first(logits, labels), second(logits, labels))
    state = first.state_dict()
    a = first(logits, labels)
    second.load_state_dict(state)
    assert torch.equal(second(logits, labels), a)
    assert isinstance(first, BalancedGroupSoftmax)
