"""Classification losses of one-stage (dense) detectors: every anchor is classified by C sigmoid classifiers,
with no background column (docs/ARCHITECTURE.md, "Peer losses and samplers").

Layout: ``logits`` [N, C] for N anchors (all images and levels of a batch, in any order: the losses are sums
over anchors), ``labels`` [N] with 0 for a background anchor (negative on every class), k in 1..C for an
anchor of class k, and −1 for an ignored anchor (no loss). The loss is a sum over the anchors' elements
divided by ``normaliser``, the number of positive anchors unless the caller says otherwise (RetinaNet: Lin et
al., "Focal Loss for Dense Object Detection", ICCV 2017, §3.3, 4.1; mmdet's and United-Perception's
``avg_factor``, which under data parallelism is the positives averaged over the processes).

- ``DenseFocalLoss``: the focal loss, α = 0.25, γ = 2 (RetinaNet's baseline).
- ``DenseACSL``: ACSL's rule on anchors (our adaptation; its docstring says how and why).
- ``acsl.losses.efl.EqualizedFocalLoss``: EFL (Li et al., CVPR 2022).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import SeededDraws
from .draws import floor_fraction, uniform_subset


class DenseClassificationLoss(nn.Module):
    """Base of the dense losses: checks, the targets, the prior of the classifiers' bias and the test-time
    scores σ(z). Subclasses implement ``elementwise(z, targets)`` ([N, C] → [N, C] loss terms)."""

    #: Prior π of every classifier's initial bias, b = −log((1 − π) / π) (RetinaNet §4.1: 0.01).
    prior_probability: float = 0.01

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)

    def initial_bias(self) -> torch.Tensor:
        """The C classifiers' initial bias at the prior π (no background column)."""
        prior = self.prior_probability
        return torch.full((self.num_classes,), -math.log((1 - prior) / prior))

    def targets(self, labels: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(one-hot targets [N, C], 1 for a background anchor's all-zero row; the anchors taken, [N] bool: not
        ignored)."""
        taken = labels >= 0
        hot = torch.zeros(labels.shape[0], self.num_classes + 1, dtype=dtype, device=labels.device)
        hot.scatter_(1, labels.clamp(min=0).unsqueeze(1), 1.0)
        return hot[:, 1:], taken

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, normaliser: float | torch.Tensor | None = None
                ) -> torch.Tensor:
        """Σ over the anchors taken of ``elementwise`` / ``normaliser`` (default: the positive anchors, at least
        1), computed in float32 for half-precision logits."""
        if logits.dim() != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(f"{type(self).__name__}: logits must have shape [N, {self.num_classes}] (one column per "
                             f"class, no background), got {tuple(logits.shape)}")
        if labels.shape != logits.shape[:1] or labels.dtype.is_floating_point:
            raise ValueError(f"{type(self).__name__}: labels must be [{logits.shape[0]}] integers in -1..C, "
                             f"got {tuple(labels.shape)} {labels.dtype}")
        z = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
        labels = labels.long()
        if labels.device.type == "cpu" and labels.numel() and (labels.min() < -1 or labels.max() > self.num_classes):
            raise ValueError(f"{type(self).__name__}: labels must lie in -1..{self.num_classes} (-1 ignored, 0 background)")
        targets, taken = self.targets(labels, z.dtype)
        if normaliser is None:
            normaliser = (labels > 0).sum().clamp(min=1)
        terms = self.elementwise(z, targets, taken) * taken.unsqueeze(1)
        return terms.sum() / normaliser

    def elementwise(self, z: torch.Tensor, targets: torch.Tensor, taken: torch.Tensor) -> torch.Tensor:
        """The [N, C] loss terms (``taken``: the anchors not ignored; their terms are kept by ``forward``)."""
        raise NotImplementedError

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits)


def focal_terms(z: torch.Tensor, targets: torch.Tensor, gamma: torch.Tensor | float, alpha: float) -> torch.Tensor:
    """α_t (1 − p_t)^γ · (−log p_t) per element (Lin et al. Eq. 5), −log p_t as the stable BCE with logits."""
    p = torch.sigmoid(z)
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets) if alpha >= 0 else 1.0
    return alpha_t * (1 - p_t).pow(gamma) * F.binary_cross_entropy_with_logits(z, targets, reduction="none")


class DenseFocalLoss(DenseClassificationLoss):
    """The focal loss (Lin et al. §3.3): FL = −α_t (1 − p_t)^γ log p_t, α = 0.25, γ = 2; torchvision's
    ``sigmoid_focal_loss`` per element."""

    def __init__(self, num_classes: int, alpha: float = 0.25, gamma: float = 2.0) -> None:
        super().__init__(num_classes)
        if gamma < 0:
            raise ValueError(f"focal loss: gamma must be >= 0, got {gamma!r}")
        self.alpha, self.gamma = float(alpha), float(gamma)

    def elementwise(self, z: torch.Tensor, targets: torch.Tensor, taken: torch.Tensor) -> torch.Tensor:
        return focal_terms(z, targets, self.gamma, self.alpha)


class DenseACSL(SeededDraws, DenseClassificationLoss):
    """ACSL (paper §3.2) adapted to a one-stage detector's anchors. A one-stage classifier has no background
    column, so the paper's rule is applied to what remains:

    - a foreground anchor of class k trains column k and every other column j whose detached p_j ≥ ξ (Eq. 6),
      exactly as a foreground RoI does;
    - a background anchor is negative on every class; it suppresses the frequent classes always, the common
      classes for a random floor(10 %) of the batch's background anchors and the rare classes for an
      independent floor(1 %), the schedule of the official code for background RoIs (``acsl.losses.acsl``);
    - every kept element is weighted by the focal term α_t (1 − p_t)^γ (α = 0.25, γ = 2): a one-stage detector
      scores about a hundred times more background anchors than a two-stage one samples background RoIs, and
      without the focal term the kept easy negatives dominate the loss (Lin et al. §3); with ξ ≤ 0 and every
      class frequent this is the focal loss. The sum is divided by the positive anchors.

    This is our adaptation, not the paper's: the paper and its code cover two-stage detectors only. The draws
    are masks made on the device (``acsl.losses.draws``), from the module's own seeded generator, over the
    anchors of one call: under mmdet, whose anchor heads call ``loss_cls`` once per FPN level, the schedule is
    drawn per level.
    """

    def __init__(self, num_classes: int, class_frequencies=None, xi: float = 0.7, alpha: float = 0.25,
                 gamma: float = 2.0, common_fraction: float = 0.1, rare_fraction: float = 0.01, seed: int = 0) -> None:
        super().__init__(num_classes)
        if class_frequencies is None or len(class_frequencies) != num_classes:
            raise ValueError(f"DenseACSL needs class_frequencies ('r'/'c'/'f' for each of the {num_classes} classes)")
        if not 0 <= xi <= 1:
            raise ValueError(f"DenseACSL: xi must lie in [0, 1], got {xi!r}")
        self.xi, self.alpha, self.gamma = float(xi), float(alpha), float(gamma)
        self.common_fraction, self.rare_fraction = float(common_fraction), float(rare_fraction)
        groups = torch.tensor([{"r": 2, "c": 1, "f": 0}[f] for f in class_frequencies])
        self.register_buffer("groups", groups, persistent=False)
        self.seed_generator(seed)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, xi={self.xi}, alpha={self.alpha}, gamma={self.gamma}"

    def weight_mask(self, z: torch.Tensor, targets: torch.Tensor, taken: torch.Tensor | None = None) -> torch.Tensor:
        """[N, C] booleans: the elements trained (class docstring); ``taken``: the anchors not ignored (an ignored
        anchor is neither foreground nor among the background anchors the schedule draws from)."""
        positive = targets > 0
        foreground = positive.any(dim=1)
        hard = torch.sigmoid(z.detach()) >= self.xi
        background = ~foreground if taken is None else ~foreground & taken
        n_bg = background.sum()
        generator = self.generator_for(z.device)
        common = uniform_subset(background, floor_fraction(self.common_fraction, n_bg), generator)
        rare = uniform_subset(background, floor_fraction(self.rare_fraction, n_bg), generator)
        groups = self.groups.to(z.device).unsqueeze(0)
        kept_by_background = (groups == 0) | ((groups == 1) & common.unsqueeze(1)) | ((groups == 2) & rare.unsqueeze(1))
        return torch.where(foreground.unsqueeze(1), hard | positive, kept_by_background)

    def elementwise(self, z: torch.Tensor, targets: torch.Tensor, taken: torch.Tensor | None = None) -> torch.Tensor:
        return focal_terms(z, targets, self.gamma, self.alpha) * self.weight_mask(z, targets, taken)
