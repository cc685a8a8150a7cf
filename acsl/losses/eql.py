"""Equalization Loss (Tan et al., "Equalization Loss for Long-Tailed Object Recognition", CVPR 2020,
§3.2, Eq. 2–4) on the RoI head's C + 1 sigmoid columns (column 0 background).

    L = −Σ_j w_j [y_j log p_j + (1 − y_j) log(1 − p_j)] / N,    w_j = 1 − E(r) T_λ(f_j) (1 − y_j)

E(r) = 1 for a foreground RoI and 0 for a background one (background RoIs keep every negative);
T_λ(f_j) = 1 when class j's image frequency f_j (images containing j / training images) is below the
threshold λ, so a foreground RoI does not suppress rare classes other than its own. The background
column is never excluded. Its gradient is w_j (p_j − y_j) / N. λ defaults to the paper's 1.76e-3 for
LVIS v0.5; the classifier's initial bias uses the prior 0.001, as in the paper. λ = 0 gives plain BCE.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .base import ClassificationLoss, one_hot_targets


class EQL(ClassificationLoss):
    use_sigmoid = True
    requires_counts = True
    prior_probability = 0.001

    def __init__(self, num_classes: int, class_frequencies: Sequence[str] | None = None,
                 class_image_counts: Sequence[int] | None = None, class_instance_counts: Sequence[int] | None = None,
                 num_images: int | None = None, lambda_: float = 1.76e-3) -> None:
        super().__init__(num_classes, class_frequencies)
        counts = self._check_counts("class_image_counts", class_image_counts)
        if not num_images or num_images < 1:
            raise ValueError(f"EQL needs num_images >= 1 (training images), got {num_images!r}")
        if lambda_ < 0:
            raise ValueError(f"EQL: lambda_ must be >= 0, got {lambda_!r}")
        self.lambda_ = float(lambda_)
        frequency = counts / num_images
        # T_λ per column; the background column (0) is never excluded.
        self.register_buffer("tail_columns", torch.cat([torch.zeros(1, dtype=torch.bool), frequency < self.lambda_]),
                             persistent=False)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, lambda_={self.lambda_}, tail_classes={int(self.tail_columns.sum())}"

    def weights(self, labels: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """w = 1 − E(r) T_λ(f) (1 − y), shape [N, C + 1]."""
        targets = one_hot_targets(labels, self.num_classes + 1, dtype)
        foreground = (labels > 0).to(dtype).unsqueeze(1)
        return 1 - foreground * self.tail_columns.to(dtype).unsqueeze(0) * (1 - targets)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self._check_inputs(logits, labels)
        if logits.shape[0] == 0:
            return logits.sum() * 0.0
        z = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
        targets = one_hot_targets(labels, z.shape[1], z.dtype)
        weights = self.weights(labels, z.dtype)
        return F.binary_cross_entropy_with_logits(z, targets, weight=weights, reduction="sum") / z.shape[0]
