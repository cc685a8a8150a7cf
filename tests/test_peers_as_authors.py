"""The peer losses as their authors ran them (issue 16), on hand-worked examples: BAGS's per-group averages
and silent groups (Li et al., BalancedGroupSoftmax), the federated loss's sample count and zero-image
classes (Zhou et al., CenterNet2 / Detic), each sigmoid method's initial prior, and the loss revision that
keeps runs of an older behaviour out of the new one's results."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from acsl.losses import LOSSES, build_loss
from acsl.losses.bags import BalancedGroupSoftmax
from acsl.losses.eqlv2 import EQLv2
from acsl.losses.federated import FederatedLoss
from acsl.models import build_detector
from acsl.profiles import get_profile
from acsl.runs import baseline_spec, decoupled_spec, method_spec

# ---------------------------------------------------------------------------------------------- BAGS
# C = 4 classes with bins (0, 50): group 1 = {1, 2} (1 and 2 instances), group 2 = {3, 4}. Logit columns:
# 0..4 as everywhere, 5 = group 0's "others", 6 = group 1's, 7 = group 2's.
BAGS_C = 4
G0, G1, G2 = [5, 0], [6, 1, 2], [7, 3, 4]  # each group's softmax columns, "others" first


def _bags(**options):
    return build_loss("bags", BAGS_C, class_image_counts=[1] * BAGS_C, class_instance_counts=[1, 2, 100, 200],
                      num_images=10, bins="0,50", **options)


def test_bags_averages_a_group_over_the_rois_taking_part_in_it():
    """N = 10: one positive of group 1 and β = 2 → 1 + 2 = 3 RoIs take part in group 1, whose
    cross-entropy is averaged over those 3 (the authors' avg factor), not divided by N = 10."""
    loss = _bags(others_ratio=2.0, seed=0)
    labels = torch.tensor([1, 0, 0, 0, 0, 0, 0, 0, 0, 3])
    logits = torch.zeros(10, loss.num_logits, dtype=torch.float64)
    logits[0, 1] = 2.0  # the positive RoI's own class logit; every other logit 0
    logits.requires_grad_(True)
    value = loss(logits, labels)
    # Group 0 (2 columns, all logits 0): CE = log 2 for every RoI, mean over N = log 2.
    # Group 1: the positive's CE = −log(e² / (e² + 2)) = log(1 + 2e⁻²); each of its 2 "others" has all
    # group-1 logits 0, CE = log 3; average over the 3: (log(1 + 2e⁻²) + 2 log 3) / 3.
    # Group 2: one positive (RoI 9) and 2 "others", all logits 0: average log 3.
    group1 = (math.log(1 + 2 * math.exp(-2)) + 2 * math.log(3)) / 3
    expected = math.log(2) + group1 + math.log(3)
    assert value.item() == pytest.approx(expected, rel=1e-12)
    value.backward()
    taking_part = logits.grad[:, G1].abs().sum(1) > 0
    assert int(taking_part.sum()) == 3 and bool(taking_part[0])
    # ∂/∂z of the positive's own column: (softmax − 1) / 3, softmax = e² / (e² + 2).
    p = math.exp(2) / (math.exp(2) + 2)
    assert logits.grad[0, 1].item() == pytest.approx((p - 1) / 3, rel=1e-12)
    # Group 0 is every RoI's, averaged over N = 10: background column of a background RoI, (½ − 1) / 10.
    assert logits.grad[1, 0].item() == pytest.approx(-0.05, rel=1e-12)


def test_bags_group_without_positives_gives_zero_loss_and_zero_gradient():
    loss = _bags(others_ratio=1e9)  # every other RoI would be an "others" RoI of a group with positives
    g = torch.Generator().manual_seed(3)
    labels = torch.tensor([1, 2, 0, 0, 1, 0, 0, 0])  # group 2 (classes 3, 4) has no positive
    logits = (torch.randn(len(labels), loss.num_logits, generator=g, dtype=torch.float64) * 2).requires_grad_(True)
    value = loss(logits, labels)
    value.backward()
    assert torch.count_nonzero(logits.grad[:, G2]) == 0
    z = logits.detach()
    group0 = F.cross_entropy(z[:, G0], (labels == 0).long())
    group1 = F.cross_entropy(z[:, G1], torch.tensor([1, 2, 0, 0, 1, 0, 0, 0]))  # all 8 RoIs take part
    torch.testing.assert_close(value.detach(), group0 + group1)
    moved = z.clone()
    moved[:, G2] += torch.randn(len(labels), 3, generator=g, dtype=torch.float64) * 5
    torch.testing.assert_close(_bags(others_ratio=1e9)(moved, labels), value.detach())


def test_bags_group_zero_is_averaged_over_every_roi():
    loss = _bags()
    labels = torch.zeros(6, dtype=torch.long)  # background only: no foreground group takes part
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(6, loss.num_logits, generator=g, dtype=torch.float64)
    torch.testing.assert_close(loss(logits, labels), F.cross_entropy(logits[:, G0], torch.ones(6, dtype=torch.long)))


# ----------------------------------------------------------------------------------------- federated
FED_C = 60
FED_COUNTS = list(range(1, FED_C + 1))


def _federated(counts=FED_COUNTS, **options):
    return build_loss("federated", len(counts), class_image_counts=counts, class_instance_counts=counts,
                      num_images=1000, **options)


def test_federated_trains_s_minus_one_classes_with_background_rois_and_s_without():
    loss = _federated(num_sample_classes=50, seed=0)  # the authors' LVIS setting, S = 50
    with_background = torch.tensor([0, 0, 0, 4, 4, 17])
    mask = loss.sampled_columns(with_background)
    assert not mask[0] and mask[4] and mask[17]
    assert int(mask.sum()) == 49  # the background label took one of the 50 slots
    without_background = torch.tensor([4, 4, 17])
    assert int(loss.sampled_columns(without_background).sum()) == 50
    # The option that fills S with foreground classes regardless.
    assert int(_federated(num_sample_classes=50, count_background=False).sampled_columns(with_background).sum()) == 50


def test_federated_gradient_covers_exactly_the_s_minus_one_classes():
    loss = _federated(num_sample_classes=5, seed=2)
    labels = torch.tensor([0, 3, 3, 0])
    logits = torch.zeros(len(labels), FED_C + 1, dtype=torch.float64, requires_grad=True)
    state = loss.generator.get_state()
    loss(logits, labels).backward()
    loss.generator.set_state(state)
    trained = logits.grad.abs().sum(0) > 0
    assert torch.equal(trained, loss.sampled_columns(labels)) and int(trained.sum()) == 4  # class 3 + 3 drawn
    # Zero logits: p = ½ on every trained column, ∂L/∂z = (½ − y) / N.
    assert logits.grad[1, 3].item() == pytest.approx(-0.5 / 4) and logits.grad[0, 3].item() == pytest.approx(0.5 / 4)


def test_federated_never_samples_a_class_with_zero_images():
    counts = [0, 5, 0, 7, 1, 0]
    loss = _federated(counts, num_sample_classes=3, seed=5)
    draws = torch.stack([loss.sampled_columns(torch.tensor([0])) for _ in range(300)])
    assert not draws[:, [1, 3, 6]].any()  # labels of the zero-image classes (counts[0], [2], [5])
    assert draws[:, [2, 4, 5]].any(0).all()  # the others do come up
    # More slots than drawable classes: every class with images is drawn, the zero-image ones still not.
    everything = _federated(counts, num_sample_classes=10).sampled_columns(torch.tensor([0]))
    assert everything.tolist() == [False, False, True, False, True, True, False]


# --------------------------------------------------------------------------------------- initial prior
#: Each sigmoid method's prior π as its own code sets it (see the loss modules' docstrings).
PRIORS = {"acsl": 0.01, "bce": 0.01, "focal": 0.01, "federated": 0.01, "eql": 0.001, "eqlv2": 0.001, "droploss": 0.001}
#: Sigmoid-type methods whose code starts every bias at a value of its own, not a prior's (ECM's cosine classifier:
#: 0; GOL's Gumbel classifier: −2).
OWN_BIAS = {"ecm": 0.0, "gol": -2.0}


def _build(name, num_classes=5):
    counts = list(range(1, num_classes + 1))
    options = {"xi": 0.7} if name == "acsl" else {}
    return build_loss(name, num_classes, ("r", "c", "f", "f", "f")[:num_classes], class_image_counts=counts,
                      class_instance_counts=counts, num_images=100, **options)


def test_every_sigmoid_loss_has_a_stated_prior():
    sigmoid = {name for name, cls in LOSSES.items() if cls.use_sigmoid}
    assert sigmoid == set(PRIORS) | set(OWN_BIAS)
    for name in set(LOSSES) - sigmoid:
        assert _build(name).initial_bias() is None  # softmax classifiers keep the layer's default
    for name, bias in OWN_BIAS.items():
        assert torch.equal(_build(name).initial_bias(), torch.full((6,), bias))


@pytest.mark.parametrize("name", sorted(PRIORS))
def test_sigmoid_initial_bias_is_minus_log_of_its_methods_prior_odds(name):
    prior = PRIORS[name]
    bias = _build(name).initial_bias()
    assert bias.shape == (6,)
    torch.testing.assert_close(bias, torch.full((6,), -math.log((1 - prior) / prior)))


def test_eqlv2_starts_at_bias_minus_6_91_in_the_detector(smoke_val):
    loss = build_loss("eqlv2", smoke_val.num_classes)
    model = build_detector(get_profile("smoke").detector, smoke_val.num_classes, loss)
    for classifier in model.roi_heads.classifiers:
        torch.testing.assert_close(classifier.bias.detach(), torch.full_like(classifier.bias, -math.log(999)))


# ------------------------------------------------------------------------------------ loss revisions
#: Hashes of the specs below as computed before loss revisions existed (commit 4c14c26; unchanged by the
#: synthetic profiles' pretrained start, which the real-data profiles do not have): the losses they use are
#: unchanged, so stored runs keep their hashes.
UNCHANGED = {
    ("lvis-v0.5", "baseline"): "151c2baf5ead66b5",
    ("lvis-v0.5", "acsl"): "9693e0260d6458f7",
    ("lvis-v1", "baseline"): "c28d79ed325c25de",
    ("lvis-v1", "acsl"): "bb1894424c25b72b",
}


@pytest.mark.parametrize("profile", ["lvis-v0.5", "lvis-v1"])
def test_specs_of_unchanged_losses_keep_their_hashes(profile):
    assert baseline_spec(profile).hash == UNCHANGED[profile, "baseline"]
    assert decoupled_spec(profile, "acsl", xi=0.7).hash == UNCHANGED[profile, "acsl"]
    assert method_spec(profile, "ACSL").hash == UNCHANGED[profile, "acsl"]
    assert method_spec(profile, "Softmax CE").hash == UNCHANGED[profile, "baseline"]
    for spec in (baseline_spec(profile), decoupled_spec(profile, "acsl", xi=0.7)):
        assert "loss_revision" not in spec.resolved()


@pytest.mark.parametrize("label,cls", [("BAGS", BalancedGroupSoftmax), ("Federated loss", FederatedLoss),
                                       ("EQLv2", EQLv2)])
@pytest.mark.parametrize("profile", ["lvis-v0.5", "lvis-v1"])
def test_a_revised_loss_hashes_apart_from_its_older_runs(monkeypatch, profile, label, cls):
    revised = method_spec(profile, label)
    assert cls.revision == 1 and revised.resolved()["loss_revision"] == 1
    with monkeypatch.context() as patch:
        patch.setattr(cls, "revision", 0)  # the loss as it was before: no revision in the hash
        older = method_spec(profile, label)
        assert "loss_revision" not in older.resolved()
        older_hash = older.hash
    assert revised.hash != older_hash
    # A stage-2 spec's parent (the softmax baseline) is untouched.
    if revised.parent is not None:
        assert revised.parent.hash == UNCHANGED[profile, "baseline"]
