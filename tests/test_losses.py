"""Losses: ACSL against the paper's closed forms (Eq. 6–7) and the official background schedule;
the baselines against torch's own functions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from acsl.losses import ACSL, LOSSES, SigmoidBCE, SoftmaxCE, build_loss

C = 30
FREQS = ["r"] * 10 + ["c"] * 12 + ["f"] * 8


def _inputs(n: int = 64, seed: int = 0, background_share: float = 0.5):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, C + 1, generator=g, dtype=torch.float64) * 3
    labels = torch.randint(1, C + 1, (n,), generator=g)
    labels[torch.rand(n, generator=g) < background_share] = 0
    return logits.requires_grad_(True), labels


@pytest.mark.parametrize("xi", [0.01, 0.3, 0.7, 0.9])
def test_acsl_gradient_equals_eq7_for_foreground_rois(xi):
    logits, labels = _inputs(seed=1, background_share=0.0)
    loss = ACSL(C, FREQS, xi=xi)(logits, labels)
    (grad,) = torch.autograd.grad(loss, logits)
    p = torch.sigmoid(logits.detach())
    onehot = F.one_hot(labels, C + 1).bool()
    w = (p >= xi).double()
    # Eq. 7: ∂L/∂z_i = p_i − 1 for i = k, w_i p_i for i ≠ k; the loss is divided by N RoIs.
    expected = torch.where(onehot, p - 1, w * p) / logits.shape[0]
    torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-12)


def test_acsl_backward_passes_gradcheck_against_finite_differences():
    from acsl.losses.acsl import _MaskedSigmoidBCE

    logits, labels = _inputs(n=12, seed=10)
    mask = ACSL(C, FREQS, xi=0.5, seed=0).weight_mask(logits, labels)
    assert torch.autograd.gradcheck(_MaskedSigmoidBCE.apply, (logits, labels, mask))


def test_acsl_statistic_free_applies_eq7_to_background_rois_too():
    logits, labels = _inputs(seed=2, background_share=0.5)
    loss = ACSL(C, xi=0.5, statistic_free=True)(logits, labels)
    (grad,) = torch.autograd.grad(loss, logits)
    p = torch.sigmoid(logits.detach())
    onehot = F.one_hot(labels, C + 1).bool()
    expected = torch.where(onehot, p - 1, (p >= 0.5).double() * p) / logits.shape[0]
    torch.testing.assert_close(grad, expected)


def test_acsl_weights_follow_the_official_rule():
    logits, labels = _inputs(n=400, seed=3, background_share=0.5)
    acsl = ACSL(C, FREQS, xi=0.7, seed=5)
    w = acsl.weights(logits.detach(), labels)
    p = torch.sigmoid(logits.detach())
    fg = labels > 0
    # Foreground RoIs: GT column 1, others (background column included) by the ξ rule.
    expected_fg = torch.maximum((p >= 0.7).double(), F.one_hot(labels, C + 1).double())[fg]
    torch.testing.assert_close(w[fg], expected_fg)
    bg = w[~fg]
    groups = torch.tensor([0] + [{"r": 1, "c": 2, "f": 3}[f] for f in FREQS])
    assert bool((bg[:, 0] == 1).all()), "background column always weighted for background RoIs"
    assert bool((bg[:, groups == 3] == 1).all()), "all background RoIs suppress frequent classes"


def test_background_rois_ignore_the_xi_rule():
    # Confident (p ≈ 1) background RoIs: the ξ rule would weight every column; the official schedule
    # weights only the background column, the frequent classes and the drawn common / rare rows.
    num_bg = 20  # floor(10 %) = 2 common rows, floor(1 %) = 0 rare rows
    logits = torch.full((num_bg, C + 1), 8.0)
    w = ACSL(C, FREQS, xi=0.7, seed=0).weights(logits, torch.zeros(num_bg, dtype=torch.long))
    rare_cols = torch.tensor([False] + [f == "r" for f in FREQS])
    common_cols = torch.tensor([False] + [f == "c" for f in FREQS])
    assert float(w[:, rare_cols].sum()) == 0.0
    assert int((w[:, common_cols].sum(1) > 0).sum()) == 2


def test_xi_of_one_compares_probabilities_like_the_official_code():
    logits = torch.tensor([[0.0, 30.0, 5.0]])  # σ(30) rounds to 1.0 in float32, σ(5) does not
    w = ACSL(2, xi=1.0, statistic_free=True).weights(logits, torch.tensor([0]))
    assert w.tolist() == [[1.0, 1.0, 0.0]]


@pytest.mark.parametrize("num_bg", [7, 30, 99, 100, 250, 1000])
def test_background_schedule_picks_floor_10_and_1_percent(num_bg):
    labels = torch.zeros(num_bg + 5, dtype=torch.long)
    labels[:5] = torch.arange(1, 6)
    logits = torch.full((num_bg + 5, C + 1), -8.0)  # confident negatives: the ξ rule would pick nothing
    w = ACSL(C, FREQS, xi=0.7, seed=0).weights(logits, labels)[5:]
    common_cols = torch.tensor([False] + [f == "c" for f in FREQS])
    rare_cols = torch.tensor([False] + [f == "r" for f in FREQS])
    common_rows = w[:, common_cols]
    rare_rows = w[:, rare_cols]
    # a RoI either suppresses the whole group or none of it
    assert bool(((common_rows.sum(1) == 0) | (common_rows.sum(1) == common_cols.sum())).all())
    assert int((common_rows.sum(1) > 0).sum()) == math.floor(num_bg * 10 / 100)
    assert int((rare_rows.sum(1) > 0).sum()) == math.floor(num_bg * 1 / 100)


def test_the_weight_matrix_is_the_papers_rule_entry_by_entry():
    """W from its definition (Eq. 6 on foreground rows; on background rows the frequent columns always, the
    common and rare groups on the drawn rows; w = 1 on the label's column), with the same draws."""
    logits, labels = _inputs(n=400, seed=2, background_share=0.7)
    loss = ACSL(C, FREQS, xi=0.7, seed=5)
    state = loss.generator.get_state()
    mask = loss.weight_mask(logits.detach(), labels)
    loss.generator.set_state(state)
    bg_rows = (labels == 0).nonzero().squeeze(1)
    common, rare = (set(loss._draw_rows(bg_rows, f).tolist()) for f in (loss.common_fraction, loss.rare_fraction))
    groups = ["bg"] + FREQS
    expected = logits.detach() >= math.log(0.7 / 0.3)
    for row in bg_rows.tolist():
        expected[row] = torch.tensor([g == "f" or (g == "c" and row in common) or (g == "r" and row in rare)
                                      for g in groups])
    expected[torch.arange(len(labels)), labels] = True
    assert torch.equal(mask, expected)


def test_background_schedule_is_random_but_seeded_and_checkpointable():
    logits, labels = _inputs(n=500, seed=4, background_share=0.9)
    a, b = ACSL(C, FREQS, seed=11), ACSL(C, FREQS, seed=11)
    wa1, wb1 = a.weights(logits.detach(), labels), b.weights(logits.detach(), labels)
    torch.testing.assert_close(wa1, wb1)
    state = a.state_dict()
    wa2 = a.weights(logits.detach(), labels)
    assert not torch.equal(wa1, wa2), "successive draws must differ"
    c = ACSL(C, FREQS, seed=999)
    c.load_state_dict(state)
    torch.testing.assert_close(c.weights(logits.detach(), labels), wa2)


def test_acsl_loss_is_weighted_bce_over_n_rois():
    logits, labels = _inputs(seed=6)
    acsl = ACSL(C, FREQS, xi=0.7, seed=3)
    state = acsl.state_dict()
    loss = acsl(logits, labels)
    acsl.load_state_dict(state)
    w = acsl.weights(logits.detach(), labels)
    bce = F.binary_cross_entropy_with_logits(logits, F.one_hot(labels, C + 1).double(), reduction="none")
    torch.testing.assert_close(loss, (w * bce).sum() / logits.shape[0])


def test_softmax_ce_matches_torch():
    logits, labels = _inputs(seed=7)
    torch.testing.assert_close(SoftmaxCE(C)(logits, labels), F.cross_entropy(logits, labels))
    torch.testing.assert_close(SoftmaxCE(C).scores(logits), torch.softmax(logits, -1))


def test_bce_matches_torch_and_its_gradient_is_eq4():
    logits, labels = _inputs(seed=8)
    targets = F.one_hot(labels, C + 1).double()
    loss = SigmoidBCE(C)(logits, labels)
    expected = F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / logits.shape[0]
    torch.testing.assert_close(loss, expected)
    (grad,) = torch.autograd.grad(loss, logits)
    torch.testing.assert_close(grad, (torch.sigmoid(logits.detach()) - targets) / logits.shape[0])
    torch.testing.assert_close(SigmoidBCE(C).scores(logits), torch.sigmoid(logits))


def test_acsl_with_tiny_xi_on_foreground_equals_bce():
    logits, labels = _inputs(seed=9, background_share=0.0)
    torch.testing.assert_close(ACSL(C, xi=1e-12, statistic_free=True)(logits, labels), SigmoidBCE(C)(logits, labels))


def test_empty_batch_gives_zero_loss_with_gradient():
    for name in LOSSES:
        loss_fn = build_loss(name, C, FREQS, class_image_counts=[1] * C, class_instance_counts=[1] * C, num_images=10)
        logits = torch.zeros(0, loss_fn.num_logits, requires_grad=True)
        loss = loss_fn(logits, torch.zeros(0, dtype=torch.long))
        assert loss.item() == 0.0 and loss.requires_grad


@pytest.mark.parametrize("xi", [0.0, -0.1, 1.5, float("nan")])
def test_xi_outside_unit_interval_is_refused(xi):
    with pytest.raises(ValueError, match=r"xi .* \(0, 1\]"):
        ACSL(C, FREQS, xi=xi)


def test_clear_errors_for_bad_configuration():
    with pytest.raises(ValueError, match="unknown loss 'magic'.*acsl, bags, bce, class_balanced, droploss, ecm, eql, eqlv2, federated, focal, gol, "
                       "ldam, norcal, seesaw, softmax_ce"):
        build_loss("magic", C)
    with pytest.raises(ValueError, match="needs class_frequencies"):
        ACSL(C)
    with pytest.raises(ValueError, match="one of .* per foreground class"):
        ACSL(C, FREQS[:-1])
    with pytest.raises(ValueError, match=r"may only contain"):
        ACSL(C, FREQS[:-1] + ["x"])
    with pytest.raises(ValueError, match=r"logits must have shape \[N, 31\]"):
        ACSL(C, FREQS)(torch.zeros(4, C), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="bad options for loss 'bce'"):
        build_loss("bce", C, xi=0.5)
