"""Final classification layers of the box head besides torchvision's plain ``nn.Linear``.

- ``CosineClassifier``: logits τ · cos(x, w_j) + b_j, the normalised linear layer Seesaw Loss trains
  with (Wang et al., "Seesaw Loss for Long-Tailed Instance Segmentation", CVPR 2021, §3.3, τ = 20).
- ``ScaledClassifier``: learnable weight scaling, LWS (Kang et al., "Decoupling Representation and
  Classifier for Long-Tailed Recognition", ICLR 2020, §4.2): the stage-1 weights and biases stay
  fixed (buffers, so they load from a stage-1 checkpoint under the same names), and only a scale per
  output, s_j, is learnt: z_j = s_j (w_j · x + b_j).

All keep the state-dict names ``weight`` and ``bias`` of ``nn.Linear``, so a decoupled stage 2 loads the
stage-1 classifier into them (``load_stage1_weights``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CosineClassifier(nn.Module):
    """z = τ · (x / ‖x‖) · (w_j / ‖w_j‖) + b_j."""

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
    """LWS: z_j = s_j (w_j · x + b_j) with ``weight`` and ``bias`` fixed and ``scale`` (init 1) learnt."""

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


def install_classifier(predictor: nn.Module, loss, in_features: int) -> None:
    """Give ``predictor`` (whose ``cls_score`` is torchvision's C + 1 linear layer) the classifier that
    ``loss`` trains, when it is another (``loss.build_classifier`` overridden, or more columns). The plain
    layer is left as built, so detectors with a plain classifier draw the same initial weights as before."""
    from ..losses.base import ClassificationLoss

    custom = type(loss).build_classifier is not ClassificationLoss.build_classifier
    if custom or loss.num_logits != predictor.cls_score.out_features:
        predictor.cls_score = loss.build_classifier(in_features)


CLASSIFIER_MODES = ("stage1", "reinit", "lws")


def stage2_classifier(classifier: nn.Module, mode: str) -> nn.Module:
    """The stage-2 classifier made from a stage-1 one (its weights already loaded), by ``mode``:
    ``stage1`` trains it as it is (ACSL's stage 2); ``reinit`` re-initialises it (cRT, Kang et al. §4.2:
    "re-initialize and optimize the classifier weights W and b"); ``lws`` freezes it and learns a scale
    per output (``ScaledClassifier``)."""
    if mode not in CLASSIFIER_MODES:
        raise ValueError(f"unknown stage-2 classifier mode {mode!r}; choose one of {', '.join(CLASSIFIER_MODES)}")
    if mode == "stage1":
        return classifier
    if not isinstance(classifier, nn.Linear):
        raise ValueError(f"stage-2 classifier mode {mode!r} needs a linear stage-1 classifier, got {type(classifier).__name__}")
    if mode == "reinit":
        classifier.reset_parameters()
        return classifier
    scaled = ScaledClassifier(classifier.in_features, classifier.out_features).to(classifier.weight.device)
    with torch.no_grad():
        scaled.weight.copy_(classifier.weight)
        scaled.bias.copy_(classifier.bias)
    return scaled


def apply_stage2_classifier(model: nn.Module, mode: str) -> None:
    """Turn every box head's classifier of ``model`` into its stage-2 form (``stage2_classifier``); a
    re-initialised one gets the loss's initial bias, as a freshly built detector has."""
    for predictor in model.roi_heads.predictors:
        predictor.cls_score = stage2_classifier(predictor.cls_score, mode)
        bias = model.classification_loss.initial_bias() if mode == "reinit" else None
        if bias is not None:
            with torch.no_grad():
                predictor.cls_score.bias.copy_(bias)
