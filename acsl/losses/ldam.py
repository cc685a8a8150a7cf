"""Label-distribution-aware margin loss (Cao et al., "Learning Imbalanced Datasets with Label-Distribution-
Aware Margin Loss", NeurIPS 2019, Eq. 13) as softmax cross-entropy over the RoI head's C + 1 columns.

A RoI of foreground class y has its own logit lowered by the margin Δ_y = K / n_y^{1/4} before the softmax,
with n_y the class's training instances and K set so the largest margin is ``max_margin`` (0.5 in the
paper); background RoIs get no margin:

    L = −log softmax(s · (z − Δ_y e_y))_y,  averaged over the N RoIs
    ∂L/∂z = s · (softmax(s · (z − Δ_y e_y)) − e_y) / N

``scale`` s multiplies the logits (the paper uses s = 30 on normalised features; the detector's
classifier is an ordinary linear layer, so the default is 1). ``max_margin = 0`` gives softmax CE.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .base import ClassificationLoss


class LDAM(ClassificationLoss):
    use_sigmoid = False
    requires_counts = True

    def __init__(self, num_classes: int, class_frequencies: Sequence[str] | None = None,
                 class_image_counts: Sequence[int] | None = None, class_instance_counts: Sequence[int] | None = None,
                 num_images: int | None = None, max_margin: float = 0.5, scale: float = 1.0) -> None:
        super().__init__(num_classes, class_frequencies)
        counts = self._check_counts("class_instance_counts", class_instance_counts).clamp(min=1)
        if max_margin < 0 or scale <= 0:
            raise ValueError(f"LDAM: max_margin must be >= 0 and scale > 0, got {max_margin!r}, {scale!r}")
        self.max_margin, self.scale = float(max_margin), float(scale)
        margins = counts.pow(-0.25)
        margins = margins * (self.max_margin / margins.max())
        self.register_buffer("margins", torch.cat([torch.zeros(1, dtype=torch.float64), margins]).float(),
                             persistent=False)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, max_margin={self.max_margin}, scale={self.scale}"

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.scale * logits, dim=-1)

    def loss(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        labels = labels.long()
        shifted = z.scatter_add(1, labels.unsqueeze(1), -self.margins.to(z)[labels].unsqueeze(1))
        return F.cross_entropy(self.scale * shifted, labels)
