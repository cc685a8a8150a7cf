"""One-stage (dense) classification losses: the focal loss and EFL against hand-worked numbers from their papers'
formulas and torchvision, EFL's gradient statistics against the gradients that reach the logits, and against
its authors' gradient collector where their layouts agree (one anchor per location)."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.ops import sigmoid_focal_loss

from acsl.losses.dense import DenseFocalLoss
from acsl.losses.efl import EqualizedFocalLoss

C = 4


def _batch(n: int = 50, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, C, generator=g, dtype=torch.float64) * 2 - 1
    labels = torch.where(torch.rand(n, generator=g) < 0.3, torch.randint(1, C + 1, (n,), generator=g), 0)
    labels[:2] = -1  # ignored anchors
    return logits, labels


def test_dense_focal_loss_is_torchvisions_over_the_positive_anchors():
    logits, labels = _batch()
    taken = labels >= 0
    targets = torch.zeros(len(labels), C + 1, dtype=torch.float64).scatter_(1, labels.clamp(min=0)[:, None], 1)[:, 1:]
    expected = sigmoid_focal_loss(logits[taken], targets[taken], alpha=0.25, gamma=2, reduction="sum") / (labels > 0).sum()
    torch.testing.assert_close(DenseFocalLoss(C)(logits, labels), expected)
    with pytest.raises(ValueError, match=r"shape \[N, 4\]"):
        DenseFocalLoss(C)(logits[:, :3], labels)
    with pytest.raises(ValueError, match="-1..4"):
        DenseFocalLoss(C)(logits, labels + 5)


def _efl_by_hand(z: list[list[float]], labels: list[int], g: list[float], normaliser: float):
    """Σ α_t w_j (1 − p_t)^γ_j (−log p_t) / normaliser, and its gradient, element by element (EFL §3.3)."""
    value, grad = 0.0, torch.zeros(len(z), C, dtype=torch.float64)
    for i, row in enumerate(z):
        for j, x in enumerate(row):
            if labels[i] < 0:
                continue
            gamma = 2 + 8 * (1 - g[j])
            w = gamma / 2
            p = 1 / (1 + math.exp(-x))
            y = labels[i] == j + 1
            pt, alpha, dpt = (p, 0.25, p * (1 - p)) if y else (1 - p, 0.75, -p * (1 - p))
            value += alpha * w * (1 - pt) ** gamma * -math.log(pt) / normaliser
            grad[i, j] = alpha * w * (gamma * (1 - pt) ** (gamma - 1) * math.log(pt) - (1 - pt) ** gamma / pt) * dpt / normaliser
    return value, grad


def test_efl_value_gradient_and_statistics_by_hand():
    loss = EqualizedFocalLoss(C)
    z = [[0.5, -1.0, 2.0, -3.0], [-0.2, 0.3, -1.5, 1.0], [1.0, 1.0, 1.0, 1.0]]
    labels = [1, 0, -1]
    for step, g in enumerate(([1.0] * C, None)):
        logits = torch.tensor(z, dtype=torch.float64, requires_grad=True)
        g = loss.pos_neg.tolist() if g is None else g  # step 1 uses what step 0 collected
        value = loss(logits, torch.tensor(labels))
        expected, expected_grad = _efl_by_hand(z, labels, g, normaliser=1.0)
        assert value.item() == pytest.approx(expected, rel=1e-9), step
        value.backward()
        torch.testing.assert_close(logits.grad, expected_grad)
        if step == 0:  # statistics: |∂L/∂z| of the positive element, and of the negatives of the two taken rows
            assert loss.pos_grad.tolist() == pytest.approx([abs(expected_grad[0, 0].item()), 0, 0, 0])
            negatives = expected_grad[:2].abs().sum(0) - torch.tensor([abs(expected_grad[0, 0].item()), 0, 0, 0])
            assert loss.neg_grad.tolist() == pytest.approx(negatives.tolist())
            assert loss.pos_neg.tolist() == pytest.approx((loss.pos_grad / (loss.neg_grad + 1e-10)).clamp(max=1).tolist())
    assert 0 < loss.pos_neg[0] < 1 and loss.pos_neg[1:].eq(0).all()  # no positives of classes 2..4 yet: γ = 10


def test_efl_statistics_equal_the_authors_collector_with_one_anchor_per_location_and_differ_with_two():
    torch.manual_seed(0)

    def statistics(anchors: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Ours, and the authors' collector's reading of the same conv-output gradient."""
        out = (torch.randn(2, anchors * C, 3, 3, dtype=torch.float64) - 1).requires_grad_(True)
        b, _, h, w = out.shape
        # the loss reads the head class-major (channel c · A + a), anchors ordered (h, w, a)
        logits = out.view(b, C, anchors, h, w).permute(0, 3, 4, 2, 1).reshape(-1, C)
        labels = torch.where(torch.rand(len(logits)) < 0.3, torch.randint(1, C + 1, (len(logits),)), 0)
        loss = EqualizedFocalLoss(C)
        loss(logits, labels).backward()
        targets = torch.zeros(len(labels), C + 1, dtype=torch.float64).scatter_(1, labels[:, None], 1)[:, 1:]
        collected = out.grad.permute(0, 2, 3, 1).reshape(-1, C).abs()  # the collector: anchor-major
        authors = torch.stack([(collected * targets).sum(0), (collected * (1 - targets)).sum(0)])
        return torch.stack([loss.pos_grad, loss.neg_grad]), authors

    ours, authors = statistics(anchors=1)
    torch.testing.assert_close(ours, authors)
    ours, authors = statistics(anchors=2)
    assert not torch.allclose(ours, authors)  # the authors' headline layout mixes classes and anchors


def test_efl_starts_at_its_prior_and_saves_its_statistics():
    loss = EqualizedFocalLoss(C)
    torch.testing.assert_close(torch.sigmoid(loss.initial_bias()), torch.full((C,), 0.001))
    logits, labels = _batch()
    loss(logits.requires_grad_(True), labels).backward()
    restored = EqualizedFocalLoss(C)
    restored.load_state_dict(loss.state_dict())
    assert torch.equal(restored.pos_neg, loss.pos_neg)
    loss.eval()
    before = loss.pos_grad.clone()
    loss(logits.detach().requires_grad_(True), labels).backward()
    assert torch.equal(loss.pos_grad, before)  # evaluation collects nothing


def test_dense_acsl_keeps_hard_negatives_of_foreground_anchors_and_the_schedule_of_background_ones():
    from acsl.losses.dense import DenseACSL

    loss = DenseACSL(C, ("r", "c", "f", "f"), xi=0.7, seed=1)
    n = 400
    labels = torch.zeros(n, dtype=torch.long)
    labels[:4] = torch.tensor([1, 2, 3, 4])
    z = torch.full((n, C), -5.0, dtype=torch.float64)
    z[0, 2] = 3.0  # a confident wrong class on the first foreground anchor: p ≥ ξ
    targets, _ = loss.targets(labels, z.dtype)
    mask = loss.weight_mask(z, targets)
    assert mask[0].tolist() == [True, False, True, False]  # its own class and the hard negative only
    assert mask[1].tolist() == [False, True, False, False]
    background = mask[4:]
    assert background[:, 2:].all()  # frequent: every background anchor
    assert int(background[:, 1].sum()) == 39 and int(background[:, 0].sum()) == 3  # floor(10 %), floor(1 %) of 396
    ignored = labels.clone()
    ignored[4:204] = -1  # ignored anchors are not background: the schedule draws from the 196 others
    targets, taken = loss.targets(ignored, z.dtype)
    mask = loss.weight_mask(z, targets, taken)
    assert int(mask[204:, 1].sum()) == 19 and not mask[4:204, :2].any()
    # with ξ = 0 (every negative hard) and every class frequent it is the focal loss
    plain = DenseACSL(C, ("f",) * C, xi=0.0)
    logits, labels = _batch()
    torch.testing.assert_close(plain(logits, labels), DenseFocalLoss(C)(logits, labels))
    with pytest.raises(ValueError, match="needs class_frequencies"):
        DenseACSL(C)
