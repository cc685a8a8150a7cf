"""Equalization Loss v2 (Tan et al., "Equalization Loss v2: A New Gradient Balance Approach for Long-tailed
Object Detection", CVPR 2021, §3.3, Eq. 6–10) on the RoI head's C + 1 sigmoid columns (column 0 background).

Each foreground classifier j keeps running sums of the magnitudes of its positive and negative gradients,
|∂L/∂z| = |p − y| weighted as they were applied, over all iterations so far (and over all processes:
the sums are all-reduced under torch.distributed, so every rank holds the same statistics). From their
ratio g_j = pos_j / neg_j:

    q_j = f(g_j) = 1 / (1 + exp(−γ (g_j − μ)))        negative weight   (Eq. 8)
    r_j = 1 + α (1 − q_j)                              positive weight   (Eq. 9)
    L = Σ_i Σ_j [y_ij r_j + (1 − y_ij) q_j] BCE(z_ij, y_ij) / N

The background column keeps weight 1 and collects nothing, as in the official code. At test time a
class's score is p_j · (1 − p_bg), as there. Defaults γ = 12, μ = 0.8, α = 4. Before any gradient is
collected every weight is 1. The sums are buffers of the module, so they travel with checkpoints (exact
resume); a decoupled stage 2 starts them from zero.

Follows the authors' code, github.com/tztztztztz/eqlv2 (mmdetection 2): the loss in
``mmdet/models/losses/eqlv2.py`` (``EQLv2``, Σ / N, gradients collected as |p − y| · w), the classifier's
initial bias in ``mmdet/models/roi_heads/bbox_heads/convfc_bbox_head.py`` (``init_weights``: with a
sigmoid loss every output, the objectness column included, starts at ``bias_init_with_prob(0.001)``), so
here every column starts from π = 0.001, b = −log(999) ≈ −6.91 (revision 1; before it π = 0.01).
Deliberate difference: the authors keep the objectness logit last, we keep it in column 0 (torchvision's
layout); the statistics are all-reduced only under torch.distributed (the authors' code always is).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .base import ClassificationLoss, one_hot_targets, summed_over_processes


class EQLv2(ClassificationLoss):
    use_sigmoid = True
    prior_probability = 0.001  # the authors' convfc_bbox_head.py: bias_init_with_prob(0.001)
    revision = 1  # the initial prior 0.01 → 0.001

    def __init__(self, num_classes: int, class_frequencies: Sequence[str] | None = None,
                 gamma: float = 12.0, mu: float = 0.8, alpha: float = 4.0) -> None:
        super().__init__(num_classes, class_frequencies)
        for name, value in (("gamma", gamma), ("mu", mu), ("alpha", alpha)):
            if not value >= 0:
                raise ValueError(f"EQLv2: {name} must be >= 0, got {value!r}")
        self.gamma, self.mu, self.alpha = float(gamma), float(mu), float(alpha)
        self.register_buffer("pos_grad", torch.zeros(num_classes, dtype=torch.float64))
        self.register_buffer("neg_grad", torch.zeros(num_classes, dtype=torch.float64))
        self.register_buffer("collected", torch.zeros((), dtype=torch.int64))

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, gamma={self.gamma}, mu={self.mu}, alpha={self.alpha}"

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """σ(z_j) · (1 − σ(z_bg)) for the foreground columns; column 0 holds σ(z_bg)."""
        p = torch.sigmoid(logits)
        return torch.cat([p[:, :1], p[:, 1:] * (1 - p[:, :1])], dim=1)

    def column_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(positive weights r, negative weights q) over the C + 1 columns (column 0: 1, 1)."""
        one = torch.ones(1, dtype=torch.float64, device=self.pos_grad.device)
        ratio = self.pos_grad / (self.neg_grad + 1e-10)
        negative = torch.sigmoid(self.gamma * (ratio - self.mu))
        positive = 1 + self.alpha * (1 - negative)
        # before the first batch is collected every weight is 1; chosen on the device (no value read back)
        first = self.collected == 0
        return (torch.where(first, 1.0, torch.cat([one, positive])),
                torch.where(first, 1.0, torch.cat([one, negative])))

    def loss(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = one_hot_targets(labels, z.shape[1], z.dtype)
        positive, negative = (w.to(z.dtype) for w in self.column_weights())
        weights = targets * positive + (1 - targets) * negative
        value = F.binary_cross_entropy_with_logits(z, targets, weight=weights, reduction="sum") / z.shape[0]
        if self.training:
            self._collect(z.detach(), targets, weights)
        return value

    def on_empty_batch(self, device: torch.device) -> None:
        if self.training:  # add nothing, but join the other processes' all-reduce
            empty = torch.zeros(0, self.num_classes + 1, device=device)
            self._collect(empty, empty, empty)

    @torch.no_grad()
    def _collect(self, z: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> None:
        """Add this batch's weighted gradient magnitudes |p − y| · w per foreground class (all ranks' sums)."""
        magnitude = (torch.sigmoid(z) - targets).abs() * weights
        sums = torch.stack([(magnitude * targets).sum(0)[1:], (magnitude * (1 - targets)).sum(0)[1:]]).double()
        sums = summed_over_processes(sums, self.sync_across_processes)
        self.pos_grad += sums[0].to(self.pos_grad.device)
        self.neg_grad += sums[1].to(self.neg_grad.device)
        self.collected += 1
