"""Neural-network building blocks below the losses and the models (docs/ARCHITECTURE.md, "Layers and
packages"): the box head's final classification layers and the declaration a loss makes of the one it
trains."""

from .classifiers import CLASSIFIER_KINDS, ClassifierSpec, CosineClassifier, ScaledClassifier, build_classifier_layer

__all__ = ["CLASSIFIER_KINDS", "ClassifierSpec", "CosineClassifier", "ScaledClassifier", "build_classifier_layer"]
