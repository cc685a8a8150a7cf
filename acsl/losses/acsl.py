"""Adaptive Class Suppression Loss (Wang et al., CVPR 2021, §3.2, Eq. 5–7), with the official code's details.

For a RoI of class k and sigmoid probabilities p = σ(z) over the C + 1 columns (column 0 background):

    L = −Σ_i w_i log(p̂_i),   w_k = 1,   w_i = 1[p_i ≥ ξ] for i ≠ k            (Eq. 5, 6)
    ∂L/∂z_i = p_i − 1 (i = k),   w_i · p_i (i ≠ k)                              (Eq. 7)

Details that follow the official implementation (docs/ARCHITECTURE.md, "The method, exactly"):
- binary cross-entropy over all C + 1 columns, the background column included; a background RoI has
  target 1 in column 0, which is always weighted for it;
- the ξ rule applies to foreground RoIs only (on every non-GT column, background column included);
- background RoIs suppress every frequent class; a random floor(10 % · n_bg) of them also suppress the
  common classes and an independent random floor(1 % · n_bg) the rare classes;
- the loss is Σ(W ⊙ BCE) / N with N the number of RoIs (no division by C);
- at test time score_c = σ(z_c) for the foreground columns (the background column is dropped);
- a freshly built classifier starts from the prior π = 0.01 on every column, b = −log(99) (the official
  code, github.com/CASIA-IVA-Lab/ACSL, ``mmdet/models/bbox_heads/bbox_head.py``, ``init_weights`` for the
  ACSL loss type; the loss itself is ``mmdet/models/losses/acsl.py``). Decoupled stage 2, the paper's
  recipe, loads the stage-1 weights over it.

Multi-label (Open Images, paper §5; ``set_label_hierarchy``): a RoI of class k is positive on k and its
ancestors; every positive column is weighted 1 and the ξ rule decides the others.

``statistic_free=True`` drops the frequency-based background schedule and applies the paper's ξ rule
(Eq. 6) to background RoIs as well, so the loss uses no dataset statistic at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .base import ClassificationLoss, SeededDraws, one_hot_targets
from .draws import floor_fraction, uniform_subset


_GROUP_BIT = {"f": 1, "c": 2, "r": 4}


def _floor_fraction(fraction: float, count: int) -> int:
    """floor(fraction · count), robust to binary rounding (0.1 · 30 must give 3)."""
    return math.floor(round(fraction * count, 9))


class ACSL(SeededDraws, ClassificationLoss):
    """Adaptive Class Suppression Loss; see the module docstring for the exact rule.

    Args:
        num_classes: C, the number of foreground classes (logits have C + 1 columns, column 0 background).
        class_frequencies: 'r' / 'c' / 'f' for each foreground class (LVIS ``frequency`` field), needed by
            the background schedule unless ``statistic_free``.
        xi: the confidence threshold ξ of Eq. 6, in (0, 1]; the paper's default is 0.7.
        statistic_free: apply the ξ rule to background RoIs instead of the frequency schedule.
        common_fraction, rare_fraction: shares of background RoIs that suppress common / rare classes.
        seed: seeds the generator that draws those background RoIs (saved in the module's state dict,
            so a resumed run draws the same RoIs as an uninterrupted one).
    """

    use_sigmoid = True
    supports_multi_label = True

    def __init__(
        self,
        num_classes: int,
        class_frequencies: Sequence[str] | None = None,
        xi: float = 0.7,
        statistic_free: bool = False,
        common_fraction: float = 0.1,
        rare_fraction: float = 0.01,
        seed: int = 0,
    ) -> None:
        super().__init__(num_classes, class_frequencies)
        if not (isinstance(xi, (int, float)) and 0.0 < xi <= 1.0):
            raise ValueError(f"ACSL: xi (ξ) must lie in (0, 1], got {xi!r}")
        for name, value in (("common_fraction", common_fraction), ("rare_fraction", rare_fraction)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"ACSL: {name} must lie in [0, 1], got {value!r}")
        if not statistic_free and self.class_frequencies is None:
            raise ValueError(
                "ACSL: the background schedule needs class_frequencies ('r'/'c'/'f' per class, the LVIS "
                "`frequency` field); pass statistic_free=True for the variant that uses no statistics"
            )
        self.xi = float(xi)
        self.statistic_free = bool(statistic_free)
        self.common_fraction = float(common_fraction)
        self.rare_fraction = float(rare_fraction)
        self.seed_generator(seed)
        if self.class_frequencies is not None:
            # One bit per frequency group for each of the C + 1 columns (column 0, background, has none):
            # a background RoI suppresses column i when its own bits (always f, c and r when drawn)
            # share one with column i.
            bits = [0] + [_GROUP_BIT[g] for g in self.class_frequencies]
            self.register_buffer("_column_bits", torch.tensor(bits, dtype=torch.uint8), persistent=False)
            # Row r: the columns a background RoI whose bits are r keeps (8 patterns of the 3 group bits), so
            # a background row's weights are one lookup instead of a pass over the whole matrix.
            patterns = torch.arange(8, dtype=torch.uint8).unsqueeze(1)
            self.register_buffer("_background_keep", (patterns & self._column_bits) != 0, persistent=False)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, xi={self.xi}, statistic_free={self.statistic_free}"

    def weights(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The binary weight matrix W as ``logits.dtype`` (see ``weight_mask``)."""
        return self.weight_mask(logits, labels).to(logits.dtype)

    def weight_mask(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The binary weight matrix W (Eq. 6 plus the background schedule), shape ``[N, C + 1]``.

        For ξ < 1, p_i ≥ ξ is tested in logit space, z_i ≥ log(ξ / (1 − ξ)), which saves a sigmoid over
        the whole matrix (σ is monotonic, so the two agree up to float rounding at the threshold).
        """
        z = logits.detach()
        if self.xi < 1.0:
            keep = z >= math.log(self.xi / (1.0 - self.xi))  # Eq. 6 for i ≠ k
        else:  # p ≥ 1 only where σ(z) rounds to 1, as in the official code
            keep = torch.sigmoid(z) >= self.xi
        if not self.statistic_free and self.on_host(z):
            background = labels == 0
            bg_rows = background.nonzero().squeeze(1)
            if bg_rows.numel() > 0:
                row_bits = torch.full((labels.shape[0],), _GROUP_BIT["f"], dtype=torch.uint8, device=z.device)
                row_bits[self._draw_rows(bg_rows, self.common_fraction)] |= _GROUP_BIT["c"]
                row_bits[self._draw_rows(bg_rows, self.rare_fraction)] |= _GROUP_BIT["r"]
                keep[bg_rows] = self._background_keep[row_bits[bg_rows].long()]  # their columns share a bit
        elif not self.statistic_free:  # the same schedule drawn on the device (acsl.losses.draws)
            keep = torch.where((labels == 0).unsqueeze(1), self._background_keep[self._device_row_bits(labels)], keep)
        # w_k = 1 on the ground-truth column (column 0 for background RoIs); with a label hierarchy on
        # every positive column (the class and its ancestors).
        if self.multi_label:
            return keep | self.label_targets.to(keep.device)[labels]
        return keep.scatter_(1, labels.long().unsqueeze(1), True)

    def _draw_rows(self, bg_rows: torch.Tensor, fraction: float) -> torch.Tensor:
        """Indices of a random floor(fraction · n_bg) of the background RoIs ``bg_rows``."""
        count = _floor_fraction(fraction, bg_rows.numel())
        chosen = torch.randperm(bg_rows.numel(), generator=self.generator)[:count].to(bg_rows.device)
        return bg_rows[chosen]

    def _device_row_bits(self, labels: torch.Tensor) -> torch.Tensor:
        """Each RoI's group bits (``_draw_rows``' schedule: f always, c for a random floor(10 %) of the background
        RoIs, r for an independent floor(1 %)), drawn without reading anything back to the host; as indices."""
        background = labels == 0
        generator = self.generator_for(labels.device)
        n_bg = background.sum()
        bits = torch.full(labels.shape, _GROUP_BIT["f"], dtype=torch.long, device=labels.device)
        for group, fraction in (("c", self.common_fraction), ("r", self.rare_fraction)):
            drawn = uniform_subset(background, floor_fraction(fraction, n_bg), generator)
            bits = bits | drawn.long() * _GROUP_BIT[group]
        return bits

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        mask = self.weight_mask(logits, labels)
        if self.multi_label:  # several positive columns: Σ W ⊙ BCE(z, Y) / N, gradient W ⊙ (p − Y) / N
            targets = self.target_matrix(labels, logits.dtype)
            return F.binary_cross_entropy_with_logits(logits, targets, weight=mask.to(logits.dtype),
                                                      reduction="sum") / logits.shape[0]
        return _MaskedSigmoidBCE.apply(logits, labels, mask)


class _MaskedSigmoidBCE(torch.autograd.Function):
    """Σ_i w_i · BCE(z_i, y_i) / N for a boolean W and one-hot Y given by ``labels``, with the closed-form
    gradient of Eq. 7, w_i (p_i − y_i) / N, so no one-hot matrix or float weight matrix is materialised.

    With y one-hot and w_k = 1:  Σ_i w_i BCE(z_i, y_i) = Σ_i w_i softplus(z_i) − Σ_rows z_k.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(logits, labels, mask)
        num_rois = logits.shape[0]
        positive = logits.gather(1, labels.unsqueeze(1)).sum()
        return (F.softplus(logits).mul_(mask).sum() - positive) / num_rois

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        logits, labels, mask = ctx.saved_tensors
        grad = torch.sigmoid(logits).mul_(mask)
        grad.scatter_add_(1, labels.unsqueeze(1), torch.full_like(labels, -1, dtype=grad.dtype).unsqueeze(1))
        return grad.mul_(grad_output / logits.shape[0]), None, None
