"""Sigmoid focal loss (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017, Eq. 5) on the RoI
head's C + 1 columns.

With p = σ(z), p_t = p for the target column and 1 − p elsewhere, α_t = α resp. 1 − α:

    FL = −α_t (1 − p_t)^γ log(p_t),  summed over the columns, divided by the N RoIs
    ∂FL/∂z = α (1 − p)^γ (γ p log p + p − 1)            (target column)
    ∂FL/∂z = (1 − α) p^γ (p − γ (1 − p) log(1 − p))     (other columns)

γ = 0 and α = ½ give half the plain sigmoid BCE. The RetinaNet defaults are γ = 2, α = 0.25, and the
classifiers start from the prior π = 0.01, b = −log(99) (Lin et al. §3.3 and §4.1 "Initialization"; the
authors' Detectron, ``detectron/core/config.py``: RETINANET.PRIOR_PROB 0.01). Deliberate difference: the
paper applies focal loss to RetinaNet's dense anchors; here it is the RoI head's loss (the paper's Table 4
row), over C + 1 columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .base import ClassificationLoss, one_hot_targets


class FocalLoss(ClassificationLoss):
    """Sigmoid focal loss over the C + 1 columns; test-time scores are σ(z)."""

    use_sigmoid = True

    def __init__(self, num_classes: int, class_frequencies: Sequence[str] | None = None,
                 gamma: float = 2.0, alpha: float = 0.25) -> None:
        super().__init__(num_classes, class_frequencies)
        if gamma < 0:
            raise ValueError(f"FocalLoss: gamma must be >= 0, got {gamma!r}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"FocalLoss: alpha must lie in [0, 1], got {alpha!r}")
        self.gamma, self.alpha = float(gamma), float(alpha)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, gamma={self.gamma}, alpha={self.alpha}"

    def loss(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = one_hot_targets(labels, z.shape[1], z.dtype)
        p = torch.sigmoid(z)
        p_t = p * targets + (1 - p) * (1 - targets)
        alpha_t = self.alpha * targets + (1 - self.alpha) * (1 - targets)
        bce = F.binary_cross_entropy_with_logits(z, targets, reduction="none")  # −log p_t, stable
        return (alpha_t * (1 - p_t).pow(self.gamma) * bce).sum() / z.shape[0]
