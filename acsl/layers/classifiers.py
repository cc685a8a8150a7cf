"""Final classification layers of the box head besides torchvision's plain ``nn.Linear``, and the
declaration (``ClassifierSpec``) by which a loss names the layer it trains.

- ``CosineClassifier``: logits τ · cos(x, w_j) + b_j, the normalised linear layer Seesaw Loss trains
  with (Wang et al., "Seesaw Loss for Long-Tailed Instance Segmentation", CVPR 2021, §3.3, τ = 20).
- ``ScaledClassifier``: learnable weight scaling, LWS (Kang et al., "Decoupling Representation and
  Classifier for Long-Tailed Recognition", ICLR 2020, §4.2): the stage-1 weights and biases stay
  fixed (buffers, so they load from a stage-1 checkpoint under the same names), and only a scale per
  output, s_j, is learnt: z_j = s_j (w_j · x + b_j).

All keep the state-dict names ``weight`` and ``bias`` of ``nn.Linear``, so a decoupled stage 2 loads the
stage-1 classifier into them (``load_stage1_weights``).

A loss declares its layer (``ClassificationLoss.classifier_spec``) and the detector builds it
(``acsl.models.classifiers.install_classifier``), so losses never build model layers and this module
depends on neither (docs/ARCHITECTURE.md, "Layers and packages").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: The layer kinds a loss may declare: torchvision's ``nn.Linear`` or ``CosineClassifier``.
CLASSIFIER_KINDS = ("linear", "cosine")


class CosineClassifier(nn.Module):
    """z = τ · (x / ‖x‖) · (w_j / ‖w_j‖) + b_j (Seesaw Loss, §3.3)."""

    def __init__(self, in_features: int, out_features: int, temperature: float = 20.0, eps: float = 1e-6) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"cosine classifier: temperature must be > 0, got {temperature!r}")
        self.in_features, self.out_features = in_features, out_features
        self.temperature, self.eps = float(temperature), float(eps)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.normal_(self.weight, std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x / (x.norm(dim=1, keepdim=True) + self.eps)
        weight = self.weight / (self.weight.norm(dim=1, keepdim=True) + self.eps)
        return self.temperature * F.linear(x, weight) + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, temperature={self.temperature}"


class ScaledClassifier(nn.Module):
    """LWS (Kang et al. §4.2): z_j = s_j (w_j · x + b_j) with ``weight`` and ``bias`` fixed and ``scale``
    (init 1) learnt."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight", torch.zeros(out_features, in_features))
        self.register_buffer("bias", torch.zeros(out_features))
        self.scale = nn.Parameter(torch.ones(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


@dataclass(frozen=True)
class ClassifierSpec:
    """The box head's final classification layer a loss trains: its ``kind`` (one of
    ``CLASSIFIER_KINDS``), its width ``num_logits`` (C + 1, or more for losses with extra columns) and,
    for ``"cosine"``, the temperature τ."""

    kind: str = "linear"
    num_logits: int = 1
    temperature: float = 20.0

    def __post_init__(self) -> None:
        if self.kind not in CLASSIFIER_KINDS:
            raise ValueError(f"unknown classifier kind {self.kind!r}; choose one of {', '.join(CLASSIFIER_KINDS)}")
        if self.num_logits < 1:
            raise ValueError(f"a classifier needs num_logits >= 1, got {self.num_logits}")
        if self.kind == "cosine" and self.temperature <= 0:
            raise ValueError(f"cosine classifier: temperature must be > 0, got {self.temperature!r}")

    def is_plain(self, num_classes: int) -> bool:
        """Whether this is torchvision's plain C + 1 ``nn.Linear`` for ``num_classes`` foreground classes."""
        return self.kind == "linear" and self.num_logits == num_classes + 1


def build_classifier_layer(spec: ClassifierSpec, in_features: int) -> nn.Module:
    """A freshly initialised layer from ``in_features`` to ``spec.num_logits`` outputs, of ``spec.kind``."""
    if spec.kind == "cosine":
        return CosineClassifier(in_features, spec.num_logits, spec.temperature)
    return nn.Linear(in_features, spec.num_logits)
