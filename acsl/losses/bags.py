"""Balanced Group Softmax, BAGS (Li et al., "Overcoming Classifier Imbalance for Long-tail Object
Detection with Balanced Group Softmax", CVPR 2020, §3.2–3.3), trained decoupled like ACSL.

Follows the authors' code (github.com/FishYuLi/BalancedGroupSoftmax, mmdetection v1:
``mmdet/models/bbox_heads/gs_bbox_head_with0.py``, ``GSBBoxHeadWith0``, and the config
``configs/bags/gs_faster_rcnn_r50_fpn_1x_lvis_with0_bg8.py``, others_sample_ratio 8).

Foreground classes are grouped by their number of training instances n: group g holds the classes with
bins[g] ≤ n < bins[g + 1] (the last group is open; default bins 0, 10, 100, 1000, i.e. (0,10), [10,100),
[100,1000), [1000,∞)); empty groups are dropped. The background forms group 0 on its own. Every group
gets an extra "others" class and its own softmax:

- group 0 = {others, background}: every RoI; background RoIs target "background", foreground RoIs "others";
- group g ≥ 1 = {others, its classes}: RoIs of its classes (its positives, n_g of them) target their
  class; of every other RoI only a random floor(``others_ratio`` × n_g) (β = 8) take part, targeting
  "others" (all of them when there are fewer), so "others" does not swamp the group (§3.3). A group
  with no positive RoI in the batch takes no part at all: zero loss, zero gradient.

Each group's cross-entropy is averaged over the RoIs taking part in it, P_g (the authors' per-group
average factor max(|P_g|, 1); |P_0| = N):

    L = Σ_g (1 / |P_g|) Σ_{i ∈ P_g} CE_g(i)

(revision 1; before it every group's sum was divided by N, the number of all RoIs, and a group without
positives still trained up to β "others" RoIs.) Test: P(background) from group 0, and a class's score =
its in-group probability × P(others) of group 0 (the probability of being an object), as the authors'
``_merge_score``.

Logit layout: columns 0..C as everywhere (0 = background); column C + 1 is group 0's "others", column
C + 1 + g group g's (the authors put each group's "others" first in its slice; only the order differs).
A decoupled stage 2 copies the stage-1 classifier's C + 1 rows and starts the "others" rows fresh.
Deliberate differences: the "others" draw uses the module's seeded generator (saved with its state, exact
resume) instead of NumPy's global one. Table 1 of the ACSL paper uses two groups, bins (0, d): pass
``bins="0,d"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .base import ClassificationLoss, SeededDraws
from .draws import uniform_subset

DEFAULT_BINS = (0, 10, 100, 1000)


def parse_bins(bins: str | Sequence[int]) -> tuple[int, ...]:
    """Group boundaries from ``"0,10,100,1000"`` or a sequence; strictly increasing, starting at 0."""
    if isinstance(bins, str):
        try:
            values = tuple(int(part) for part in bins.split(",") if part.strip())
        except ValueError:
            raise ValueError(f"BAGS bins {bins!r}: expected comma-separated integers such as '0,10,100,1000'") from None
    else:
        values = tuple(int(v) for v in bins)
    if not values or values[0] != 0 or any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"BAGS bins must start at 0 and increase strictly, got {values}")
    return values


def group_classes(instance_counts: Sequence[int], bins: Sequence[int]) -> list[list[int]]:
    """Labels (1..C) of each non-empty foreground group, by training-instance count."""
    groups: list[list[int]] = [[] for _ in bins]
    for label, count in enumerate(instance_counts, start=1):
        index = max(g for g, lower in enumerate(bins) if count >= lower)
        groups[index].append(label)
    return [g for g in groups if g]


class BalancedGroupSoftmax(SeededDraws, ClassificationLoss):
    use_sigmoid = False
    requires_counts = True
    revision = 1  # per-group averages, groups without positives skipped (the authors' code)

    def __init__(self, num_classes: int, class_frequencies: Sequence[str] | None = None,
                 class_image_counts: Sequence[int] | None = None, class_instance_counts: Sequence[int] | None = None,
                 num_images: int | None = None, bins: str | Sequence[int] = DEFAULT_BINS, others_ratio: float = 8.0,
                 seed: int = 0) -> None:
        super().__init__(num_classes, class_frequencies)
        counts = self._check_counts("class_instance_counts", class_instance_counts)
        if others_ratio <= 0:
            raise ValueError(f"BAGS: others_ratio must be > 0, got {others_ratio!r}")
        self.bins = parse_bins(bins)
        self.others_ratio = float(others_ratio)
        self.groups = group_classes(counts.long().tolist(), self.bins)
        # group_of[label] = 1..G for foreground labels (0: background); position inside its group's softmax.
        group_of = torch.zeros(num_classes + 1, dtype=torch.long)
        position = torch.zeros(num_classes + 1, dtype=torch.long)
        for g, labels in enumerate(self.groups, start=1):
            group_of[labels] = g
            position[labels] = torch.arange(1, len(labels) + 1)
        self.register_buffer("group_of", group_of, persistent=False)
        self.register_buffer("position", position, persistent=False)
        self.seed_generator(seed)

    def extra_repr(self) -> str:
        sizes = [len(g) for g in self.groups]
        return f"num_classes={self.num_classes}, bins={self.bins}, group_sizes={sizes}, others_ratio={self.others_ratio}"


    @property
    def num_logits(self) -> int:
        return self.num_classes + 2 + len(self.groups)

    def group_columns(self, g: int) -> list[int]:
        """Logit columns of group ``g``'s softmax, "others" first (g = 0: background group)."""
        others = self.num_classes + 1 + g
        return [others, 0] if g == 0 else [others, *self.groups[g - 1]]

    def loss(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        group_of = self.group_of.to(labels.device)[labels]
        position = self.position.to(labels.device)[labels]
        # Group 0: background (position 1) against "others" (position 0); every RoI takes part.
        total = F.cross_entropy(z[:, self.group_columns(0)], (labels == 0).long(), reduction="mean")
        if not self.on_host(z):
            return total + self._device_group_losses(z, group_of, position)
        for g in range(1, len(self.groups) + 1):
            rows = self.participants(group_of == g)
            if rows is None:  # no positive of group g in the batch: the group takes no part
                continue
            targets = torch.where(group_of[rows] == g, position[rows], torch.zeros_like(rows))
            total = total + F.cross_entropy(z[rows][:, self.group_columns(g)], targets, reduction="mean")
        return total

    def _device_group_losses(self, z: torch.Tensor, group_of: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """The foreground groups' losses as ``loss`` sums them, without reading anything back to the host: each
        group's cross-entropy over every RoI, averaged over its participants (``participants``' rule, drawn on the
        device by ``acsl.losses.draws``); a group without positives has none and adds 0."""
        generator = self.generator_for(z.device)
        total = z.new_zeros(())
        for g in range(1, len(self.groups) + 1):
            inside = group_of == g
            outside = ~inside
            keep = torch.minimum(outside.sum(), torch.floor(self.others_ratio * inside.sum().double()).long())
            rows = inside | uniform_subset(outside, keep, generator)
            targets = torch.where(inside, position, torch.zeros_like(position))
            losses = F.cross_entropy(z[:, self.group_columns(g)], targets, reduction="none")
            total = total + (losses * rows).sum() / rows.sum().clamp(min=1)
        return total

    def participants(self, inside: torch.Tensor) -> torch.Tensor | None:
        """Rows taking part in a foreground group whose positives are ``inside`` (a boolean mask): every
        positive and a random floor(β × #positives) of the other RoIs (all of them when fewer); None
        when the group has no positive."""
        positives = int(inside.sum())
        if positives == 0:
            return None
        outside = (~inside).nonzero().squeeze(1)
        keep = min(len(outside), int(self.others_ratio * positives))
        drawn = torch.randperm(len(outside), generator=self.generator)[:keep].to(outside.device)
        return torch.cat([inside.nonzero().squeeze(1), outside[drawn]])

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """[N, C + 1]: column 0 P(background) from group 0; class j: P_g(j) × P_0(others)."""
        scores = torch.zeros(logits.shape[0], self.num_classes + 1, dtype=logits.dtype, device=logits.device)
        background = torch.softmax(logits[:, self.group_columns(0)], dim=1)
        scores[:, 0] = background[:, 1]
        for g in range(1, len(self.groups) + 1):
            within = torch.softmax(logits[:, self.group_columns(g)], dim=1)[:, 1:]
            scores[:, self.groups[g - 1]] = within * background[:, :1]
        return scores
