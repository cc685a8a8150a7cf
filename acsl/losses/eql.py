"""Equalization Loss (Tan et al., "Equalization Loss for Long-Tailed Object Recognition", CVPR 2020,
§3.2, Eq. 2–4): C sigmoid classifiers, no background logit
(docs/ARCHITECTURE.md, "Peer losses and samplers").

    L = −Σ_{j=1..C} w_j [y_j log p_j + (1 − y_j) log(1 − p_j)] / N,    w_j = 1 − E(r) T_λ(f_j) (1 − y_j)

A background RoI has y = 0 on every class and E(r) = 0, so it suppresses every class; a foreground RoI
has E(r) = 1 and does not suppress the classes whose image frequency f_j (images containing j / training
images) is below λ, other than its own. The gradient is w_j (p_j − y_j) / N. In torchvision's C + 1
layout column 0 (background) gets no loss and is dropped at test time, where score_j = σ(z_j).

λ defaults to 1.77e-3: on LVIS v0.5 (56,740 training images) f < λ holds exactly for the rare and common
classes (≤ 100 images). λ = 0 gives plain BCE over the C classes. ``tail_from_groups=True`` takes that
tail from the training set's groups instead (T = 1 for the rare and common classes, λ unused): the Open
Images track, whose groups follow the real dataset's shares (``acsl.data.openimages_groups``).

Follows the authors' code, github.com/tztztztztz/eql.detectron2: ``projects/EQL/eql/fast_rcnn.py``
(``EQLFastRCNNOutputs.eql_loss``: C logits, w as above, Σ / N; ``EQLFastRCNNOutputLayers``: every
classifier starts from the prior π = 0.001, "roughly 1 / num_classes", b = −log(999) ≈ −6.91) and
``projects/EQL/eql/cfg.py`` (λ = 0.00177). Their classifier has no background output; ours keeps
torchvision's column 0, which gets no loss (weight 0) and starts from the same bias.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .base import ClassificationLoss


class EQL(ClassificationLoss):
    use_sigmoid = True
    supports_multi_label = True
    requires_counts = True
    prior_probability = 0.001  # the authors' fast_rcnn.py

    def __init__(self, num_classes: int, class_frequencies: Sequence[str] | None = None,
                 class_image_counts: Sequence[int] | None = None, class_instance_counts: Sequence[int] | None = None,
                 num_images: int | None = None, lambda_: float = 1.77e-3, tail_from_groups: bool = False) -> None:
        super().__init__(num_classes, class_frequencies)
        below = self._frequency_below(class_image_counts, num_images, lambda_)
        self.lambda_ = float(lambda_)
        self.tail_from_groups = bool(tail_from_groups)
        if self.tail_from_groups:
            if self.class_frequencies is None:
                raise ValueError("EQL with tail_from_groups=True needs class_frequencies ('r'/'c'/'f' per class)")
            tail = torch.tensor([f in ("r", "c") for f in self.class_frequencies], dtype=torch.bool)
        else:
            tail = below
        # T per column (column 0, background, is not a classifier here).
        self.register_buffer("tail_columns", torch.cat([torch.zeros(1, dtype=torch.bool), tail]), persistent=False)

    def extra_repr(self) -> str:
        rule = "tail=rare+common" if self.tail_from_groups else f"lambda_={self.lambda_}"
        return f"num_classes={self.num_classes}, {rule}, tail_classes={int(self.tail_columns.sum())}"

    def weights(self, labels: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """w = 1 − E(r) T_λ(f) (1 − y), shape [N, C + 1]; column 0 (no background logit) weighs 0."""
        targets = self.target_matrix(labels, dtype)  # multi-hot with a label hierarchy
        foreground = (labels > 0).to(dtype).unsqueeze(1)
        weights = 1 - foreground * self.tail_columns.to(dtype).unsqueeze(0) * (1 - targets)
        weights[:, 0] = 0
        return weights

    def loss(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = self.target_matrix(labels, z.dtype)
        weights = self.weights(labels, z.dtype)
        return F.binary_cross_entropy_with_logits(z, targets, weight=weights, reduction="sum") / z.shape[0]
