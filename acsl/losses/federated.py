"""Federated loss (Zhou, Koltun and Krähenbühl, "Probabilistic two-stage detection", 2021, §5, as used for
LVIS in their CenterNet2 / Detic code): C sigmoid classifiers, the background logit untrained
(docs/ARCHITECTURE.md, "Peer losses and samplers").

Each batch trains only a subset S of the classifiers: every class with a ground-truth RoI in the batch,
filled up to ``num_sample_classes`` (50 on LVIS) by classes drawn without replacement with probability
∝ image_count^``power`` (0.5). A background RoI has target 0 on every class. The loss is sigmoid BCE over
the columns of S:

    L = −Σ_{j ∈ S} [y_j log p_j + (1 − y_j) log(1 − p_j)] / N,     ∂L/∂z_j = 1[j ∈ S] (p_j − y_j) / N

With ``num_sample_classes`` ≥ C every class is in S and the loss is plain BCE over the C classes. The
draw uses the module's own seeded generator, saved in its state dict (exact resume), like ACSL's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .base import ClassificationLoss, SeededDraws, one_hot_targets


class FederatedLoss(SeededDraws, ClassificationLoss):
    use_sigmoid = True
    requires_counts = True

    def __init__(self, num_classes: int, class_frequencies: Sequence[str] | None = None,
                 class_image_counts: Sequence[int] | None = None, class_instance_counts: Sequence[int] | None = None,
                 num_images: int | None = None, num_sample_classes: int = 50, power: float = 0.5, seed: int = 0) -> None:
        super().__init__(num_classes, class_frequencies)
        counts = self._check_counts("class_image_counts", class_image_counts)
        if num_sample_classes < 1:
            raise ValueError(f"FederatedLoss: num_sample_classes must be >= 1, got {num_sample_classes!r}")
        self.num_sample_classes = int(num_sample_classes)
        self.power = float(power)
        self.register_buffer("sampling_weights", counts.clamp(min=1).pow(self.power).float(), persistent=False)
        self.seed_generator(seed)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, num_sample_classes={self.num_sample_classes}, power={self.power}"

    def sampled_columns(self, labels: torch.Tensor) -> torch.Tensor:
        """Boolean mask over the C + 1 columns: the batch's ground-truth classes and classes drawn
        ∝ image_count^power, ``num_sample_classes`` in all; column 0 (background) is never trained."""
        mask = torch.zeros(self.num_classes + 1, dtype=torch.bool)
        mask[labels.detach().cpu().long().unique()] = True
        mask[0] = False
        missing = self.num_sample_classes - int(mask[1:].sum())
        if missing > 0:
            weights = self.sampling_weights.clone()
            weights[mask[1:]] = 0.0
            available = int((weights > 0).sum())
            if available > 0:
                drawn = torch.multinomial(weights, min(missing, available), replacement=False, generator=self.generator)
                mask[drawn + 1] = True
        return mask.to(labels.device)

    def loss(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = one_hot_targets(labels, z.shape[1], z.dtype)
        columns = self.sampled_columns(labels).to(z.dtype).unsqueeze(0).expand_as(z)
        return F.binary_cross_entropy_with_logits(z, targets, weight=columns, reduction="sum") / z.shape[0]
