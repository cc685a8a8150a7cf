"""Class-balanced loss (Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR
2019, Eq. 3–5) on softmax cross-entropy over the C + 1 columns.

The effective number of samples of class c with n_c training instances is E_c = (1 − β^{n_c}) / (1 − β);
class c's loss weight is 1 / E_c = (1 − β) / (1 − β^{n_c}), normalised so the C foreground weights sum
to C. A RoI of class y contributes w_y · CE, averaged over the N RoIs; background RoIs keep weight 1.
β = 0 weights every class 1 (plain softmax CE); β → 1 approaches inverse-frequency weighting. The paper's
detection default is β = 0.999.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .base import ClassificationLoss


class ClassBalancedCE(ClassificationLoss):
    use_sigmoid = False
    requires_counts = True

    def __init__(self, num_classes: int, class_frequencies: Sequence[str] | None = None,
                 class_image_counts: Sequence[int] | None = None, class_instance_counts: Sequence[int] | None = None,
                 num_images: int | None = None, beta: float = 0.999) -> None:
        super().__init__(num_classes, class_frequencies)
        counts = self._check_counts("class_instance_counts", class_instance_counts).clamp(min=1)
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"ClassBalancedCE: beta must lie in [0, 1), got {beta!r}")
        self.beta = float(beta)
        inverse_effective = (1 - self.beta) / (1 - torch.pow(torch.tensor(self.beta, dtype=torch.float64), counts))
        foreground = inverse_effective * self.num_classes / inverse_effective.sum()
        self.register_buffer("class_weights", torch.cat([torch.ones(1, dtype=torch.float64), foreground]).float(),
                             persistent=False)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, beta={self.beta}"

    def loss(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        per_roi = F.cross_entropy(z, labels.long(), reduction="none")
        return (self.class_weights.to(z.device)[labels.long()] * per_roi).mean()
