"""Plain sigmoid binary cross-entropy over the C + 1 columns (paper Eq. 1–4): every negative column is
weighted 1, so head-class samples suppress every tail classifier; the ``ξ → 0`` limit of ACSL on
foreground RoIs."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import ClassificationLoss, one_hot_targets


class SigmoidBCE(ClassificationLoss):
    """L = −Σ_i [y_i log p_i + (1 − y_i) log(1 − p_i)] summed over the C + 1 columns, divided by N.

    The gradient is ∂L/∂z_i = p_i − y_i (Eq. 4), divided by N. Scores at test time are σ(z).
    """

    use_sigmoid = True

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = one_hot_targets(labels, logits.shape[1], logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / logits.shape[0]
