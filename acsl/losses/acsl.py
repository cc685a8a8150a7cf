"""Adaptive Class Suppression Loss (Wang et al., CVPR 2021, §3.2, Eq. 5–7), with the official code's details.

For a RoI of class k and sigmoid probabilities p = σ(z) over the C + 1 columns (column 0 background):

    L = −Σ_i w_i log(p̂_i),   w_k = 1,   w_i = 1[p_i ≥ ξ] for i ≠ k            (Eq. 5, 6)
    ∂L/∂z_i = p_i − 1 (i = k),   w_i · p_i (i ≠ k)                              (Eq. 7)

Details that follow the official implementation (DESIGN §3):
- binary cross-entropy over all C + 1 columns, the background column included; a background RoI has
  target 1 in column 0, which is always weighted for it;
- the ξ rule applies to foreground RoIs only (on every non-GT column, background column included);
- background RoIs suppress every frequent class; a random floor(10 % · n_bg) of them also suppress the
  common classes and an independent random floor(1 % · n_bg) the rare classes;
- the loss is Σ(W ⊙ BCE) / N with N the number of RoIs (no division by C);
- at test time score_c = σ(z_c) for the foreground columns (the background column is dropped).

``statistic_free=True`` drops the frequency-based background schedule and applies the paper's ξ rule
(Eq. 6) to background RoIs as well, so the loss uses no dataset statistic at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .base import ClassificationLoss, one_hot_targets


def _floor_fraction(fraction: float, count: int) -> int:
    """floor(fraction · count), robust to binary rounding (0.1 · 30 must give 3)."""
    return math.floor(round(fraction * count, 9))


class ACSL(ClassificationLoss):
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
        self.generator = torch.Generator().manual_seed(int(seed))
        if self.class_frequencies is not None:
            # Column masks over the C + 1 columns (column 0 is background, in no group).
            groups = ("-",) + self.class_frequencies
            for group in ("r", "c", "f"):
                mask = torch.tensor([g == group for g in groups], dtype=torch.bool)
                self.register_buffer(f"_{group}_columns", mask, persistent=False)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, xi={self.xi}, statistic_free={self.statistic_free}"

    # The generator state travels with the module's state dict (checkpoints and resume).
    def get_extra_state(self) -> dict:
        return {"generator_state": self.generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        self.generator.set_state(state["generator_state"])

    def weights(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The binary weight matrix W (Eq. 6 plus the background schedule), shape ``[N, C + 1]``."""
        probs = torch.sigmoid(logits.detach())
        targets = one_hot_targets(labels, logits.shape[1], logits.dtype)
        confused = (probs >= self.xi).to(logits.dtype)
        weights = torch.maximum(confused, targets)  # Eq. 6 on every RoI
        if self.statistic_free:
            return weights
        background = labels == 0
        num_bg = int(background.sum())
        if num_bg == 0:
            return weights
        bg_weights = torch.zeros(num_bg, logits.shape[1], dtype=logits.dtype, device=logits.device)
        bg_weights[:, 0] = 1.0
        bg_weights[:, self._f_columns] = 1.0
        for fraction, columns in ((self.common_fraction, self._c_columns), (self.rare_fraction, self._r_columns)):
            chosen = torch.randperm(num_bg, generator=self.generator)[: _floor_fraction(fraction, num_bg)]
            chosen = chosen.to(logits.device)
            bg_weights[chosen.unsqueeze(1), columns.nonzero().squeeze(1).unsqueeze(0)] = 1.0
        weights[background] = bg_weights
        return weights

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self._check_inputs(logits, labels)
        if logits.shape[0] == 0:
            return logits.sum() * 0.0
        targets = one_hot_targets(labels, logits.shape[1], logits.dtype)
        weights = self.weights(logits, labels)
        bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        return (weights * bce).sum() / logits.shape[0]
