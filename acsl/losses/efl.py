"""Equalized Focal Loss, EFL (Li, Yang, Tian, Wang, Shao, Gao and Jin, "Equalized Focal Loss for Dense Long-Tailed
Object Detection", CVPR 2022, §3.3): the focal loss with a focusing factor per class that grows as the class's
accumulated positive gradients fall behind its negative ones (docs/ARCHITECTURE.md, "Peer losses and samplers").

For anchor i and class j (``acsl.losses.dense`` layout: C sigmoid logits, no background column), with p = σ(z),
p_t = p for the anchor's class and 1 − p otherwise, α_t = α for its class and 1 − α otherwise:

    γ_j = γ_b + s · (1 − g_j),    w_j = γ_j / γ_b    (both detached)
    L = Σ_i Σ_j α_t w_j (1 − p_t)^γ_j (−log p_t) / normaliser

with γ_b = 2, s = 8, α = 0.25. g_j = min(P_j / (N_j + 1e-10), 1), where P_j and N_j accumulate, over every step
so far and every process, the magnitudes |∂L/∂z_ij| of the gradient of the loss that reaches the logits, over
the anchors positive for j and negative for j (ignored anchors excluded). g starts at 1 (step 0 is the plain
focal loss), and a step's statistics are added during its backward pass, so step t uses steps 0..t − 1.

Follows the authors' code, github.com/ModelTC/United-Perception (HEAD 52aaeb9): ``up/tasks/det/plugins/efl/models/
losses/efl.py`` (the loss, ``collect_grad``, buffers ``pos_grad``, ``neg_grad``, ``pos_neg`` saved in checkpoints,
all-reduce SUM of each step's sums) and ``up/utils/general/hook_helper.py`` (``gradient_collector``: a backward
hook on the classification conv's output, so the magnitudes are those of the whole training loss, loss weight
and normaliser included); ``configs/det/efl/efl_improved_baseline_r50_2x_rfs.yaml`` (γ_b 2, s 8, α 0.25, prior
0.001). Here the gradient is taken by a hook on the logits the loss receives, the same values in the loss's own
row order. A difference we keep on purpose: in the authors' current code (since commit 2129a44) the
head's output is read class-major by the loss (channel = c · A + a) but anchor-major by the gradient collector
(channel = a · C + c), so with their headline 2 anchors per location the statistics of class k mix classes ⌊k/2⌋
and 601 + ⌊(k + 1)/2⌋ and both anchors; the per-class definition above is what the paper states and what their
code computes with one anchor per location (``tests/test_dense_losses.py`` checks that case against an
anchor-major reading of the gradients). −log p_t is computed as the stable BCE with logits where theirs takes
log(p_t).
"""

from __future__ import annotations

import torch

from .base import summed_over_processes
from .dense import DenseClassificationLoss, focal_terms


class EqualizedFocalLoss(DenseClassificationLoss):
    prior_probability = 0.001  # the authors' init_prior

    def __init__(self, num_classes: int, gamma_b: float = 2.0, scale_factor: float = 8.0, alpha: float = 0.25) -> None:
        super().__init__(num_classes)
        if not gamma_b > 0 or scale_factor < 0:
            raise ValueError(f"EFL: gamma_b must be > 0 and scale_factor >= 0, got {gamma_b!r}, {scale_factor!r}")
        self.gamma_b, self.scale_factor, self.alpha = float(gamma_b), float(scale_factor), float(alpha)
        self.register_buffer("pos_grad", torch.zeros(num_classes, dtype=torch.float64))
        self.register_buffer("neg_grad", torch.zeros(num_classes, dtype=torch.float64))
        self.register_buffer("pos_neg", torch.ones(num_classes, dtype=torch.float64))  # g; 1: plain focal at step 0
        #: All-reduce each step's sums over the processes (off on a path that runs on one rank alone).
        self.sync_across_processes = True

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, gamma_b={self.gamma_b}, scale_factor={self.scale_factor}, alpha={self.alpha}"

    def focusing(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(γ_j, w_j) per class, shape [1, C], detached."""
        gamma = self.gamma_b + self.scale_factor * (1 - self.pos_neg.to(dtype))
        return gamma.unsqueeze(0), (gamma / self.gamma_b).unsqueeze(0)

    def elementwise(self, z: torch.Tensor, targets: torch.Tensor, taken: torch.Tensor) -> torch.Tensor:
        gamma, weight = self.focusing(z.dtype)
        return weight * focal_terms(z, targets, gamma, self.alpha)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, normaliser: float | torch.Tensor | None = None
                ) -> torch.Tensor:
        if self.training and logits.requires_grad:  # the gradient that reaches the logits, in backward
            kept = labels.long()  # only the labels wait for backward: the masks are made there
            logits.register_hook(lambda grad: self.collect(grad, kept))
        return super().forward(logits, labels, normaliser)

    @torch.no_grad()
    def collect(self, grad: torch.Tensor, labels: torch.Tensor) -> None:
        """Add this step's |∂L/∂z| over positive and negative elements per class (all processes' sums; ignored
        anchors, label −1, left out) and update g = min(P / (N + 1e-10), 1)."""
        targets, taken = self.targets(labels, torch.float64)
        magnitude = grad.detach().abs().to(torch.float64) * taken.unsqueeze(1)
        sums = torch.stack([(magnitude * targets).sum(0), (magnitude * (1 - targets)).sum(0)])
        sums = summed_over_processes(sums, self.sync_across_processes)
        self.pos_grad += sums[0].to(self.pos_grad.device)
        self.neg_grad += sums[1].to(self.neg_grad.device)
        self.pos_neg.copy_((self.pos_grad / (self.neg_grad + 1e-10)).clamp(0, 1))
