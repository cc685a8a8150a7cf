"""Gumbel Optimized Loss, GOL (Alexandridis, Deng, Nguyen and Luo, "Long-tailed Instance Segmentation using Gumbel
Optimized Loss", ECCV 2022): the Gumbel activation in place of the sigmoid, p = exp(−exp(−z)), the CDF of the
Gumbel distribution (docs/ARCHITECTURE.md, "Peer losses and samplers").

With z clamped to [−4, 10] (no gradient outside) and p = exp(−exp(−z)), so that log p = −e^(−z):

    ℓ_ij = −w_ij [y_ij log p_ij + (1 − y_ij) log(1 − p_ij)],    L = Σ_ij ℓ_ij / N

- ``droploss=True`` (the default; the authors' headline LVIS model, ``configs/gol/droploss_normed_mask_r50_rfs_
  4x4_2x_gumbel.py``): C classifiers and no background logit, with DropLoss's weights w (``acsl.losses.droploss``:
  foreground RoIs never suppress a tail class other than their own, background RoIs keep each tail column with
  the probability that the batch's foreground RoIs are of a tail class), the tail being the classes whose image
  frequency is below λ = 0.0011 (LVIS v1: 815 classes, every rare and common one and 17 frequent);
- ``droploss=False`` (``GumbelCE``, ``configs/activations/gumbel/gumbel_r50_4x4_1x.py``): the C + 1 columns,
  background included (a background RoI is positive on column 0), every weight 1, and the reduced loss clamped
  to [0, 20] (a batch whose loss exceeds 20 gets no gradient).

Test-time scores are exp(−exp(−z)) on the classes, unclamped; the background column is dropped, not multiplied
in. The classifier starts with every weight 0.001 and every bias −2 (the configs' ``init_cfg``: Constant,
val 0.001, bias −2, on ``fc_cls``).

Follows the authors' code, github.com/kostas1515/GOL (HEAD 70026b73): ``mmdet/models/losses/gumbel_ce.py`` and
``mmdet/models/losses/droploss.py`` (``use_classif='gumbel'``). Deliberate differences: log(1 − p) is computed as
log(−expm1(−e^(−z))), the same value without the authors' round trip through p; with ``droploss=True``
torchvision's column 0 stays, with weight 0, and is dropped at test time; the tail draws use the module's own
seeded generator (exact resume); the authors' NMS IoU on LVIS is 0.3, ours the detector's (0.5) for every loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .base import one_hot_targets
from .droploss import DropLoss

#: The clamp of the logits before the Gumbel activation, and of GumbelCE's reduced loss (the authors' code).
LOGIT_RANGE = (-4.0, 10.0)
LOSS_CLAMP = 20.0


def gumbel_bce(z: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Element-wise −[y log p + (1 − y) log(1 − p)] with p = exp(−exp(−z)), z clamped to ``LOGIT_RANGE``."""
    clamped = z.clamp(*LOGIT_RANGE)
    neg_log_p = torch.exp(-clamped)  # −log p
    return targets * neg_log_p - (1 - targets) * torch.log(-torch.expm1(-neg_log_p))


class GumbelOptimizedLoss(DropLoss):
    def __init__(self, num_classes: int, class_frequencies: Sequence[str] | None = None,
                 class_image_counts: Sequence[int] | None = None, class_instance_counts: Sequence[int] | None = None,
                 num_images: int | None = None, lambda_: float = 1.1e-3, droploss: bool = True, seed: int = 0) -> None:
        super().__init__(num_classes, class_frequencies, class_image_counts, class_instance_counts, num_images,
                         lambda_=lambda_, seed=seed)
        self.droploss = bool(droploss)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", droploss={self.droploss}"

    def initial_bias(self) -> torch.Tensor:
        return torch.full((self.num_classes + 1,), -2.0)

    def initial_weight(self) -> float:
        return 0.001

    def loss(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = one_hot_targets(labels, self.num_classes + 1, z.dtype)
        if not self.droploss:
            return (gumbel_bce(z, targets).sum() / z.shape[0]).clamp(0.0, LOSS_CLAMP)
        targets[:, 0] = 0  # no background classifier: a background RoI is 0 on every class
        return (gumbel_bce(z, targets) * self.weights(labels, z.dtype)).sum() / z.shape[0]

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.exp(-torch.exp(-logits))
