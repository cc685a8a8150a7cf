"""The baselines of the paper's comparison (issue 3), each against its closed form or its limiting case:
focal loss (Lin et al. 2017), EQL (Tan et al. 2020), class-balanced loss (Cui et al. 2019)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from acsl.losses import build_loss
from acsl.losses.base import one_hot_targets

C = 12
IMAGE_COUNTS = [1, 2, 3, 5, 8, 13, 40, 90, 200, 400, 700, 950]
INSTANCE_COUNTS = [c * 2 for c in IMAGE_COUNTS]
NUM_IMAGES = 1000


def _build(name, **options):
    return build_loss(name, C, class_image_counts=IMAGE_COUNTS, class_instance_counts=INSTANCE_COUNTS,
                      num_images=NUM_IMAGES, **options)


def _inputs(n: int = 48, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, C + 1, generator=g, dtype=torch.float64) * 3).requires_grad_(True)
    labels = torch.randint(1, C + 1, (n,), generator=g)
    labels[torch.rand(n, generator=g) < 0.5] = 0
    return logits, labels


@pytest.mark.parametrize("gamma,alpha", [(2.0, 0.25), (1.0, 0.5), (0.5, 0.9)])
def test_focal_gradient_equals_its_closed_form(gamma, alpha):
    logits, labels = _inputs()
    _build("focal", gamma=gamma, alpha=alpha)(logits, labels).backward()
    p = torch.sigmoid(logits.detach())
    y = one_hot_targets(labels, C + 1, p.dtype)
    target_term = alpha * (1 - p) ** gamma * (gamma * p * torch.log(p) + p - 1)
    other_term = (1 - alpha) * p ** gamma * (p - gamma * (1 - p) * torch.log(1 - p))
    expected = (y * target_term + (1 - y) * other_term) / logits.shape[0]
    torch.testing.assert_close(logits.grad, expected)


def test_focal_with_gamma_0_and_alpha_half_is_half_the_bce():
    logits, labels = _inputs()
    bce = build_loss("bce", C)(logits, labels)
    torch.testing.assert_close(_build("focal", gamma=0.0, alpha=0.5)(logits, labels), 0.5 * bce)


def test_eql_excludes_only_tail_classes_of_foreground_rois():
    loss = _build("eql", lambda_=0.01)  # f < 0.01: classes with fewer than 10 of 1000 images, labels 1..5
    assert loss.tail_columns.tolist() == [False] + [c < 10 for c in IMAGE_COUNTS]
    labels = torch.tensor([0, 3, 9])
    w = loss.weights(labels, torch.float64)
    assert w[0].tolist() == [0.0] + [1.0] * C  # background RoI: every class suppressed; no background logit
    assert w[1].tolist() == [0.0, 0, 0, 1, 0, 0] + [1.0] * (C - 5)  # its own tail class 3 kept, other tails out
    assert w[2].tolist() == [0.0, 0, 0, 0, 0, 0] + [1.0] * (C - 5)


def test_eql_gradient_is_the_weighted_bce_gradient():
    logits, labels = _inputs()
    loss = _build("eql", lambda_=0.05)
    loss(logits, labels).backward()
    p = torch.sigmoid(logits.detach())
    y = one_hot_targets(labels, C + 1, p.dtype)
    torch.testing.assert_close(logits.grad, loss.weights(labels, p.dtype) * (p - y) / logits.shape[0])


def _bce_over_the_classes(logits, labels):
    """Plain sigmoid BCE over the C foreground classes (background RoIs: target 0 everywhere), Σ / N."""
    targets = one_hot_targets(labels, C + 1, logits.dtype)[:, 1:]
    return F.binary_cross_entropy_with_logits(logits[:, 1:], targets, reduction="sum") / logits.shape[0]


def test_eql_with_lambda_0_is_bce_and_starts_from_the_prior_0_001():
    logits, labels = _inputs()
    torch.testing.assert_close(_build("eql", lambda_=0.0)(logits, labels), _bce_over_the_classes(logits, labels))
    assert build_loss("eql", 3, class_image_counts=[100, 101, 5000], num_images=56_740).tail_columns.tolist() == \
        [False, True, False, False]  # λ = 1.77e-3 on LVIS v0.5: exactly the classes with <= 100 images
    bias = _build("eql").initial_bias()
    assert torch.sigmoid(bias).allclose(torch.full((C + 1,), 0.001))


def test_class_balanced_weights_follow_the_effective_number():
    beta = 0.99
    loss = _build("class_balanced", beta=beta)
    raw = torch.tensor([(1 - beta) / (1 - beta ** n) for n in INSTANCE_COUNTS], dtype=torch.float64)
    expected = raw * C / raw.sum()
    torch.testing.assert_close(loss.class_weights[1:].double(), expected, rtol=1e-6, atol=1e-7)
    assert loss.class_weights[0] == 1.0  # background
    assert loss.class_weights[1] > loss.class_weights[-1]  # the rarest class weighs most
    logits, labels = _inputs()
    per_roi = F.cross_entropy(logits, labels, reduction="none")
    torch.testing.assert_close(loss(logits, labels), (loss.class_weights.double()[labels] * per_roi).mean())


def test_class_balanced_with_beta_0_is_softmax_ce():
    logits, labels = _inputs()
    torch.testing.assert_close(_build("class_balanced", beta=0.0)(logits, labels), F.cross_entropy(logits, labels))


@pytest.mark.parametrize("name", ["eql", "class_balanced"])
def test_losses_that_need_counts_say_so(name):
    with pytest.raises(ValueError, match="needs class_"):
        build_loss(name, C)


@pytest.mark.parametrize("name,options,message", [
    ("focal", {"gamma": -1.0}, "gamma must be >= 0"),
    ("focal", {"alpha": 1.5}, r"alpha must lie in \[0, 1\]"),
    ("eql", {"lambda_": -0.1}, "lambda_ must be >= 0"),
    ("class_balanced", {"beta": 1.0}, r"beta must lie in \[0, 1\)"),
])
def test_bad_hyper_parameters_are_refused(name, options, message):
    with pytest.raises(ValueError, match=message):
        _build(name, **options)


def test_every_loss_gives_a_finite_loss_and_gradient_in_half_precision_inputs():
    logits, labels = _inputs()
    for name in ("focal", "eql", "class_balanced", "federated", "eqlv2", "ldam"):
        z = logits.detach().to(torch.bfloat16).requires_grad_(True)
        value = _build(name)(z, labels)
        value.backward()
        assert value.dtype == torch.float32 and math.isfinite(value.item()) and torch.isfinite(z.grad.float()).all()


def test_federated_loss_trains_the_batchs_classes_plus_a_frequency_draw():
    loss = _build("federated", num_sample_classes=5, seed=3)
    labels = torch.tensor([0, 2, 2, 7])
    mask = loss.sampled_columns(labels)
    # Background logit untrained; the background label takes one of the 5 slots (the authors' sampler),
    # so 4 foreground classes are trained.
    assert not mask[0] and mask[2] and mask[7] and int(mask[1:].sum()) == 4
    again = _build("federated", num_sample_classes=5, seed=3).sampled_columns(labels)
    assert torch.equal(mask, again)  # seeded
    # Drawn ∝ image_count^0.5: over many draws the most frequent free class comes up more than the rarest.
    draws = torch.stack([loss.sampled_columns(torch.tensor([0])) for _ in range(400)]).float().mean(0)
    assert draws[12] > draws[1]


def test_federated_gradient_is_bce_on_the_sampled_columns():
    logits, labels = _inputs()
    loss = _build("federated", num_sample_classes=4, seed=1)
    state = loss.generator.get_state()
    loss(logits, labels).backward()
    loss.generator.set_state(state)
    mask = loss.sampled_columns(labels).double()
    p = torch.sigmoid(logits.detach())
    y = one_hot_targets(labels, C + 1, p.dtype)
    torch.testing.assert_close(logits.grad, mask * (p - y) / logits.shape[0])


def test_federated_with_every_class_is_bce():
    logits, labels = _inputs()  # with background RoIs, whose label takes a slot: C + 1 slots train every class
    torch.testing.assert_close(_build("federated", num_sample_classes=C + 1)(logits, labels),
                               _bce_over_the_classes(logits, labels))
    torch.testing.assert_close(_build("federated", num_sample_classes=C, count_background=False)(logits, labels),
                               _bce_over_the_classes(logits, labels))


def test_eqlv2_starts_as_bce_and_accumulates_weighted_gradient_magnitudes():
    loss = _build("eqlv2")
    logits, labels = _inputs()
    torch.testing.assert_close(loss(logits, labels), build_loss("bce", C)(logits, labels))  # all weights 1 at first
    p = torch.sigmoid(logits.detach())
    y = one_hot_targets(labels, C + 1, p.dtype)
    grad = (p - y).abs()
    torch.testing.assert_close(loss.pos_grad, (grad * y).sum(0)[1:])
    torch.testing.assert_close(loss.neg_grad, (grad * (1 - y)).sum(0)[1:])
    # Second step: the weights come from the ratio of the sums (Eq. 8–9) and are what the gradient uses.
    positive, negative = loss.column_weights()
    ratio = loss.pos_grad / (loss.neg_grad + 1e-10)
    q = 1 / (1 + torch.exp(-12.0 * (ratio - 0.8)))
    torch.testing.assert_close(negative[1:], q)
    torch.testing.assert_close(positive[1:], 1 + 4.0 * (1 - q))
    assert positive[0] == negative[0] == 1.0  # background column
    logits2, labels2 = _inputs(seed=1)
    loss(logits2, labels2).backward()
    p2 = torch.sigmoid(logits2.detach())
    y2 = one_hot_targets(labels2, C + 1, p2.dtype)
    weights = y2 * positive + (1 - y2) * negative
    torch.testing.assert_close(logits2.grad, weights * (p2 - y2) / logits2.shape[0])


def test_eqlv2_statistics_are_part_of_the_state_dict():
    loss = _build("eqlv2")
    logits, labels = _inputs()
    loss(logits, labels)
    fresh = _build("eqlv2")
    fresh.load_state_dict(loss.state_dict())
    assert torch.equal(fresh.pos_grad, loss.pos_grad) and int(fresh.collected) == 1
    loss.eval()
    before = loss.pos_grad.clone()
    loss(logits, labels)  # evaluation collects nothing
    assert torch.equal(loss.pos_grad, before)


def test_ldam_margins_and_gradient_follow_cao_et_al():
    loss = _build("ldam", max_margin=0.5, scale=2.0)
    expected = torch.tensor([n ** -0.25 for n in INSTANCE_COUNTS], dtype=torch.float64)
    torch.testing.assert_close(loss.margins[1:].double(), expected * 0.5 / expected.max(), rtol=1e-6, atol=1e-7)
    assert loss.margins[0] == 0 and loss.margins[1:].max() == pytest.approx(0.5)  # rarest class: largest margin
    logits, labels = _inputs()
    loss(logits, labels).backward()
    y = one_hot_targets(labels, C + 1, logits.dtype)
    shifted = logits.detach() - loss.margins.double()[labels].unsqueeze(1) * y
    torch.testing.assert_close(logits.grad, 2.0 * (torch.softmax(2.0 * shifted, -1) - y) / logits.shape[0])


def test_ldam_without_margin_is_softmax_ce():
    logits, labels = _inputs()
    torch.testing.assert_close(_build("ldam", max_margin=0.0)(logits, labels), F.cross_entropy(logits, labels))


def test_eqlv2_scores_multiply_by_the_non_background_probability():
    logits, _ = _inputs()
    scores = _build("eqlv2").scores(logits.detach())
    p = torch.sigmoid(logits.detach())
    torch.testing.assert_close(scores[:, 1:], p[:, 1:] * (1 - p[:, :1]))
