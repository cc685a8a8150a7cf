"""Federated loss (Zhou, Koltun and Krähenbühl, "Probabilistic two-stage detection", 2021, §5, as used for
LVIS in their CenterNet2 / Detic code): C sigmoid classifiers, the background logit untrained
(docs/ARCHITECTURE.md, "Peer losses and samplers").

Follows the authors' code: github.com/facebookresearch/Detic, ``detic/modeling/utils.py``
(``get_fed_loss_inds``, ``load_class_freq``) and ``detic/config.py``; the same loss is in
github.com/xingyizhou/CenterNet2, ``projects/CenterNet2/centernet/modeling/roi_heads/custom_fast_rcnn.py``
and ``centernet/config.py`` (FED_LOSS_NUM_CAT 50, FED_LOSS_FREQ_WEIGHT 0.5, PRIOR_PROB 0.01).

Each batch trains only the classifiers of a set S of labels: the labels that appear among the batch's
RoIs, filled up to ``num_sample_classes`` (50 on LVIS) by foreground classes drawn without replacement
with probability ∝ image_count^``power`` (0.5). As in the authors' sampler, the background label counts
among the labels that appeared, so a batch with background RoIs trains S − 1 foreground classifiers and a
batch without them S (49 and 50 at their setting); it is arguably a quirk, kept to match their runs
(``count_background=False`` fills S with foreground classes always). A class with zero training images
has weight 0^power = 0 and is never drawn (it is trained only when one of its RoIs is in the batch). A
background RoI has target 0 on every class. The loss is sigmoid BCE over the foreground columns of S:

    L = −Σ_{j ∈ S, j ≥ 1} [y_j log p_j + (1 − y_j) log(1 − p_j)] / N,   ∂L/∂z_j = 1[j ∈ S] (p_j − y_j) / N

The classifiers start from the prior π = 0.01 (the authors' ROI_BOX_HEAD.PRIOR_PROB default; we found no
LVIS config that overrides it). With ``num_sample_classes`` ≥ C + 1 every class is trained and the loss is
plain BCE over the C classes.

Revision 1 (the two rules above: the background's slot and zero-image classes; before it S was filled
with foreground classes only and counts were clamped to at least 1). Deliberate differences: CenterNet2's
older sampler could also spend a slot drawing the background label when no background RoI was present;
Detic's, which we follow, never draws it. When fewer classes can be drawn than slots are free, we draw all
of them (the authors' ``torch.multinomial`` would fail). The draw uses the module's own seeded generator,
saved in its state dict (exact resume), like ACSL's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .base import ClassificationLoss, SeededDraws, one_hot_targets
from .draws import weighted_subset


class FederatedLoss(SeededDraws, ClassificationLoss):
    use_sigmoid = True
    requires_counts = True
    revision = 1  # the background takes a slot of S, zero-image classes are never drawn (the authors' code)

    def __init__(self, num_classes: int, class_frequencies: Sequence[str] | None = None,
                 class_image_counts: Sequence[int] | None = None, class_instance_counts: Sequence[int] | None = None,
                 num_images: int | None = None, num_sample_classes: int = 50, power: float = 0.5,
                 count_background: bool = True, seed: int = 0) -> None:
        super().__init__(num_classes, class_frequencies)
        counts = self._check_counts("class_image_counts", class_image_counts)
        if num_sample_classes < 1:
            raise ValueError(f"FederatedLoss: num_sample_classes must be >= 1, got {num_sample_classes!r}")
        if power < 0:
            raise ValueError(f"FederatedLoss: power must be >= 0, got {power!r}")
        self.num_sample_classes = int(num_sample_classes)
        self.power = float(power)
        self.count_background = bool(count_background)
        # image_count^power; a class without training images is never drawn (0^power = 0 for power > 0,
        # and also for power = 0, where torch's 0^0 would give 1).
        weights = torch.where(counts > 0, counts.pow(self.power), torch.zeros_like(counts))
        self.register_buffer("sampling_weights", weights.float(), persistent=False)
        self.seed_generator(seed)

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, num_sample_classes={self.num_sample_classes}, power={self.power}, "
                f"count_background={self.count_background}")

    def sampled_columns(self, labels: torch.Tensor) -> torch.Tensor:
        """Boolean mask over the C + 1 columns: the batch's ground-truth classes and classes drawn
        ∝ image_count^power, ``num_sample_classes`` labels in all, the background label among them when the
        batch has background RoIs (``count_background``); column 0 (background) is never trained."""
        if not self.on_host(labels):
            return self._device_sampled_columns(labels)
        appeared = torch.zeros(self.num_classes + 1, dtype=torch.bool)
        appeared[labels.detach().cpu().long().unique()] = True
        if not self.count_background:
            appeared[0] = False
        missing = self.num_sample_classes - int(appeared.sum())
        mask = appeared.clone()
        mask[0] = False
        if missing > 0:
            weights = self.sampling_weights.clone()
            weights[appeared[1:]] = 0.0
            available = int((weights > 0).sum())
            if available > 0:
                drawn = torch.multinomial(weights, min(missing, available), replacement=False, generator=self.generator)
                mask[drawn + 1] = True
        return mask.to(labels.device)

    def _device_sampled_columns(self, labels: torch.Tensor) -> torch.Tensor:
        """``sampled_columns`` without reading anything back to the host: the missing classes are drawn
        without replacement ∝ their weights by ``acsl.losses.draws.weighted_subset``."""
        appeared = torch.zeros(self.num_classes + 1, dtype=torch.bool, device=labels.device)
        appeared[labels] = True
        if not self.count_background:
            appeared[0] = False
        missing = (self.num_sample_classes - appeared.sum()).clamp(min=0)
        weights = torch.where(appeared[1:], torch.zeros_like(self.sampling_weights), self.sampling_weights)
        drawn = weighted_subset(weights, missing, self.generator_for(labels.device))
        return torch.cat([torch.zeros(1, dtype=torch.bool, device=labels.device), appeared[1:] | drawn])

    def loss(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = one_hot_targets(labels, z.shape[1], z.dtype)
        columns = self.sampled_columns(labels).to(z.dtype).unsqueeze(0).expand_as(z)
        return F.binary_cross_entropy_with_logits(z, targets, weight=columns, reduction="sum") / z.shape[0]
