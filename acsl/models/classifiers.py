"""How the detector installs and transforms its box classifiers; the layers themselves live in
``acsl.layers.classifiers`` (docs/ARCHITECTURE.md, "Layers and packages").

- ``install_classifier``: build the layer a loss declares (``ClassificationLoss.classifier_spec``) in
  place of torchvision's plain C + 1 ``nn.Linear``, only when it differs from it.
- ``initialise_classifier``: the start a loss prescribes (initial bias, a constant weight).
- ``apply_stage2_classifier``: the decoupled stage 2's classifier modes, ``CLASSIFIER_MODES`` (Kang et
  al., "Decoupling Representation and Classifier for Long-Tailed Recognition", ICLR 2020, §4.2).
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import CLASSIFIER_MODES
from ..layers.classifiers import ScaledClassifier, build_classifier_layer
from ..losses.base import ClassificationLoss



def install_classifier(predictor: nn.Module, loss: ClassificationLoss, in_features: int) -> None:
    """Give ``predictor`` (whose ``cls_score`` is torchvision's C + 1 linear layer) the classifier that
    ``loss`` declares, when it is another (another kind, or more columns). The plain layer is left as
    built, so detectors with a plain classifier draw the same initial weights as before."""
    spec = loss.classifier_spec
    if spec.kind != "linear" or spec.num_logits != predictor.cls_score.out_features:
        predictor.cls_score = build_classifier_layer(spec, in_features)


def initialise_classifier(classifier: nn.Module, loss: ClassificationLoss) -> None:
    """Start ``classifier`` where ``loss`` says: its initial bias (a sigmoid loss's prior) and, for a loss that
    prescribes one, a constant weight (``ClassificationLoss.initial_weight``); otherwise the layer's own init."""
    bias, weight = loss.initial_bias(), loss.initial_weight()
    with torch.no_grad():
        if bias is not None:
            classifier.bias.copy_(bias)
        if weight is not None:
            classifier.weight.fill_(weight)


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
    re-initialised one gets the loss's initial bias, as a freshly built detector has. ``"stage1"`` changes
    nothing (any detector, RetinaNet included)."""
    if mode == "stage1":
        return
    for predictor in model.roi_heads.predictors:
        predictor.cls_score = stage2_classifier(predictor.cls_score, mode)
        if mode == "reinit":
            initialise_classifier(predictor.cls_score, model.classification_loss)
