"""Effective Class-Margin loss, ECM (Hyun Cho and Krähenbühl, "Long-tail Detection with Effective Class-Margins",
ECCV 2022): sigmoid classifiers over the C + 1 columns, background included, each trained with the class margin
that its positive and negative counts call for (docs/ARCHITECTURE.md, "Peer losses and samplers").

With n_j the training instances of class j, S = Σ_j n_j, a background count n_0 = S · ρ (ρ = 6.3313), the total
T = S + n_0 and n̄_j = T − n_j the negatives of column j (the background's among them):

    δ_j = ¼ · log(n_j / n̄_j),                    p_ij = σ(2 z_ij + δ_j)
    a_j = n̄_j / n_j,                            w_j = a_j · log((1 + a_j) / a_j)
    L = −Σ_i Σ_{j=0..C} w_j [y_ij log p_ij + (1 − y_ij) log(1 − p_ij)] / N,   ∂L/∂z_ij = 2 w_j (p_ij − y_ij) / N

y is one-hot over all C + 1 columns: a background RoI is positive on column 0. The authors write p as
e^(z + m⁺) / (e^(z + m⁺) + e^(−z + m⁻)) with m⁺_j = log((n_j^¼ + n̄_j^¼) / n̄_j^¼) and m⁻_j = log((n_j^¼ +
n̄_j^¼) / n_j^¼); that is σ(2z + m⁺ − m⁻) = σ(2z + δ_j), computed here as softplus for stability. Test-time
scores drop the margin and the factor 2: s_j = σ(z_j) · (1 − σ(z_0)) for the C classes.

The classifier is the cosine one, z = 20 · cos(x, w) + b (mmdet's ``NormedLinear``, temperature 20, the bias
starting at 0), as the authors' configs use.

Follows the authors' code, github.com/janghyuncho/ECM-Loss (HEAD a6372408): ``mmdet/models/losses/
effective_class_margin_loss.py`` and ``ecm_utils.py``, ``configs/effective_class_margin_loss/r50_ecm_1x.py``.
Facts from it that are easy to miss: the counts the authors load (``lvis_v1_image_count.pkl``) are LVIS v1's
instance counts, whatever the file's name (decoded: all 1203 equal the train file's ``instance_count``, sum
1,270,141), so ours are instance counts too; the weight w_j multiplies the positive and the negative term alike
(≈ 1 on every foreground column, 0.31 on the background's at ρ = 6.3313); ``label_weights`` and the reduction
are ignored, the loss is the sum over N × (C + 1) divided by N. One deliberate difference: a class without
training instances would make δ = −∞ in theirs; ours counts it as one instance.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..layers.classifiers import ClassifierSpec
from .base import ClassificationLoss, one_hot_targets


class EffectiveClassMarginLoss(ClassificationLoss):
    use_sigmoid = True
    requires_counts = True

    def __init__(self, num_classes: int, class_frequencies: Sequence[str] | None = None,
                 class_image_counts: Sequence[int] | None = None, class_instance_counts: Sequence[int] | None = None,
                 num_images: int | None = None, fg_bg_ratio: float = 6.3313, temperature: float = 20.0) -> None:
        super().__init__(num_classes, class_frequencies)
        counts = self._check_counts("class_instance_counts", class_instance_counts).clamp(min=1)
        if fg_bg_ratio <= 0:
            raise ValueError(f"ECM: fg_bg_ratio must be > 0, got {fg_bg_ratio!r}")
        if temperature <= 0:
            raise ValueError(f"ECM: temperature must be > 0, got {temperature!r}")
        self.fg_bg_ratio, self.temperature = float(fg_bg_ratio), float(temperature)
        total_foreground = counts.sum()
        positives = torch.cat([(total_foreground * self.fg_bg_ratio).reshape(1), counts])  # column 0: background
        negatives = positives.sum() - positives
        ratio = negatives / positives  # a_j
        self.register_buffer("margins", 0.25 * torch.log(positives / negatives), persistent=False)  # float64
        self.register_buffer("column_weights", ratio * torch.log((1 + ratio) / ratio), persistent=False)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, fg_bg_ratio={self.fg_bg_ratio}, temperature={self.temperature}"

    @property
    def classifier_spec(self) -> ClassifierSpec:
        return ClassifierSpec("cosine", self.num_logits, self.temperature)

    def initial_bias(self) -> torch.Tensor | None:
        """0 on every column: the cosine classifier's own start, as in the authors' configs."""
        return torch.zeros(self.num_classes + 1)

    def loss(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = one_hot_targets(labels, self.num_classes + 1, z.dtype)
        margined = 2 * z + self.margins.to(z)
        # −[y log σ(x) + (1 − y) log(1 − σ(x))] = softplus(x) − y·x
        elementwise = F.softplus(margined) - targets * margined
        return (elementwise * self.column_weights.to(z)).sum() / z.shape[0]

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """σ(z) on every column; the classes' times 1 − σ(z_0) (the authors' ``get_activation``)."""
        p = torch.sigmoid(logits)
        return torch.cat([p[:, :1], p[:, 1:] * (1 - p[:, :1])], dim=1)
