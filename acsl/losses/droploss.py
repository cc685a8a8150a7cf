"""DropLoss (Hsieh, Robb, Chen and Huang, "DropLoss for Long-Tail Instance Segmentation", AAAI 2021, §3):
C sigmoid classifiers, no background logit; EQL's exclusion for foreground RoIs, and background RoIs that
suppress the rare classes only as often as the batch's foreground RoIs are rare
(docs/ARCHITECTURE.md, "Peer losses and samplers").

With y the one-hot targets over the C classes (a background RoI has y = 0 everywhere), rare(j) = 1 when
class j's image frequency f_j (images containing j / training images) is below λ, and r the share of the
batch's foreground RoIs whose class is rare:

    T_ij = rare(j)                      for a foreground RoI i
    T_ij = rare(j) · 1[u_ij > r]        for a background RoI i, u_ij ~ U[0, 1) drawn per RoI and class
    w_ij = 1 − T_ij (1 − y_ij)
    L = −Σ_i Σ_{j=1..C} w_ij [y_ij log p_ij + (1 − y_ij) log(1 − p_ij)] / N,   ∂L/∂z_ij = w_ij (p_ij − y_ij) / N

So a background RoI keeps each rare column with probability r and a foreground RoI never suppresses a rare
class other than its own. A batch without rare foreground RoIs (r = 0) drops every rare column of its
background RoIs; a batch without foreground RoIs (r undefined: NaN in the authors' code, whose comparison is
false) drops nothing.

Follows the authors' code, github.com/timy90022/DropLoss (HEAD b6ed7f0): ``projects/DropLoss/droploss/
fast_rcnn.py`` (the C-wide ``cls_score`` with weights N(0, 0.01) and the bias of the prior π = 0.001,
b = −6.9068; the drop weights; Σ(BCE · w) / N over the RoIs of the batch; test scores σ(z)) and
``projects/DropLoss/configs`` (λ = 0.00177 for LVIS v0.5, the code default, which the v1 yaml also sets).
Deliberate differences: torchvision's C + 1 layout keeps a column 0 that gets no loss (weight 0) and is
dropped at test time; u is drawn from the module's own seeded generator, saved in its state dict (exact
resume), where the authors draw from the global RNG; the classifier's weights keep torchvision's default
initialisation, as for every loss here (the authors': N(0, 0.01)); the authors' inherited box-regression loss
skips the last class (its ``bg_class_ind = C − 1``), ours is torchvision's and regresses every class.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .base import ClassificationLoss, SeededDraws


class DropLoss(SeededDraws, ClassificationLoss):
    use_sigmoid = True
    requires_counts = True
    prior_probability = 0.001  # the authors' PRIOR_PROB: b = −6.9068
    revision = 1  # u drawn for every RoI (one path on every device), where the first version drew for background RoIs

    def __init__(self, num_classes: int, class_frequencies: Sequence[str] | None = None,
                 class_image_counts: Sequence[int] | None = None, class_instance_counts: Sequence[int] | None = None,
                 num_images: int | None = None, lambda_: float = 1.77e-3, seed: int = 0) -> None:
        super().__init__(num_classes, class_frequencies)
        below = self._frequency_below(class_image_counts, num_images, lambda_)
        self.lambda_ = float(lambda_)
        # rare(j) per column; column 0 (background) is not a classifier here
        rare = torch.cat([torch.zeros(1, dtype=torch.bool), below])
        self.register_buffer("rare_columns", rare, persistent=False)
        self.seed_generator(seed)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, lambda_={self.lambda_}, rare_classes={int(self.rare_columns.sum())}"

    def weights(self, labels: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """w = 1 − T (1 − y), shape [N, C + 1] (module docstring); column 0 weighs 0. Nothing is read back to the
        host: u is drawn for every RoI (on the loss's generator on the labels' device) and used by the
        background ones, as the authors draw ``rand_like`` over the whole logits."""
        rare = self.rare_columns.to(labels.device).unsqueeze(0)
        foreground = (labels > 0).unsqueeze(1)
        count = foreground.sum()
        keep_rate = (rare[0, labels].unsqueeze(1) & foreground).sum() / count.clamp(min=1)
        shape = (labels.shape[0], self.num_classes + 1)
        uniform = torch.rand(shape, generator=self.generator_for(labels.device), device=labels.device)
        # no foreground RoI: the authors' ratio is NaN and nothing is dropped
        background_drop = rare & (uniform > keep_rate) & (count > 0)
        drop = torch.where(foreground, rare, background_drop)
        drop.scatter_(1, labels.unsqueeze(1), False)  # T (1 − y): a RoI's own column is never dropped
        weights = 1 - drop.to(dtype)
        weights[:, 0] = 0
        return weights

    def loss(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = torch.zeros_like(z).scatter_(1, labels.unsqueeze(1), 1.0)
        targets[:, 0] = 0  # the background column has no classifier: a background RoI is 0 on every class
        return F.binary_cross_entropy_with_logits(z, targets, weight=self.weights(labels, z.dtype),
                                                  reduction="sum") / z.shape[0]
