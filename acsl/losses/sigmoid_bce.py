"""Plain sigmoid binary cross-entropy over the C + 1 columns (paper Eq. 1–4): every negative column is
weighted 1, so head-class samples suppress every tail classifier; the ``ξ → 0`` limit of ACSL on
foreground RoIs.

No authors' code defines it; it shares ACSL's classifier and initial prior π = 0.01 (the ACSL code's
``mmdet/models/bbox_heads/bbox_head.py``; see ``acsl.losses.acsl``), so BCE and ACSL differ only in
their weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import ClassificationLoss


class SigmoidBCE(ClassificationLoss):
    """L = −Σ_i [y_i log p_i + (1 − y_i) log(1 − p_i)] summed over the C + 1 columns, divided by N.

    The gradient is ∂L/∂z_i = p_i − y_i (Eq. 4), divided by N. Scores at test time are σ(z).
    """

    use_sigmoid = True
    supports_multi_label = True

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = self.target_matrix(labels, logits.dtype)  # multi-hot with a label hierarchy
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / logits.shape[0]
