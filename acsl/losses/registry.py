"""Name → loss class registry, so experiment specs, the CLI and notebooks name losses by string."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from .acsl import ACSL
from .bags import BalancedGroupSoftmax
from .base import ClassificationLoss
from .class_balanced import ClassBalancedCE
from .droploss import DropLoss
from .ecm import EffectiveClassMarginLoss
from .eql import EQL
from .dense import DenseACSL, DenseClassificationLoss, DenseFocalLoss
from .efl import EqualizedFocalLoss
from .eqlv2 import EQLv2
from .federated import FederatedLoss
from .focal import FocalLoss
from .gol import GumbelOptimizedLoss
from .ldam import LDAM
from .norcal import NorCal
from .sigmoid_bce import SigmoidBCE
from .seesaw import SeesawLoss
from .softmax_ce import SoftmaxCE

LOSSES: dict[str, type[ClassificationLoss]] = {
    "acsl": ACSL,
    "softmax_ce": SoftmaxCE,
    "bce": SigmoidBCE,
    "focal": FocalLoss,
    "class_balanced": ClassBalancedCE,
    "eql": EQL,
    "federated": FederatedLoss,
    "eqlv2": EQLv2,
    "ldam": LDAM,
    "seesaw": SeesawLoss,
    "bags": BalancedGroupSoftmax,
    # after ACSL (CVPR 2021)
    "droploss": DropLoss,
    "ecm": EffectiveClassMarginLoss,
    "gol": GumbelOptimizedLoss,
    "norcal": NorCal,
}


#: The losses of a one-stage detector (``acsl.models.retinanet``; the dense layout of ``acsl.losses.dense``): a
#: spec whose detector is RetinaNet names one of these, and no other.
DENSE_LOSSES: dict[str, type[DenseClassificationLoss]] = {
    "dense_focal": DenseFocalLoss,
    "efl": EqualizedFocalLoss,
    "dense_acsl": DenseACSL,
}


def loss_class(name: str) -> type:
    """The class registered under ``name`` in ``LOSSES`` or, one-stage, ``DENSE_LOSSES``."""
    registry = {**LOSSES, **DENSE_LOSSES}
    if name not in registry:
        raise ValueError(f"unknown loss {name!r}; registered losses: {', '.join(sorted(LOSSES))}; one-stage: "
                         f"{', '.join(sorted(DENSE_LOSSES))}")
    return registry[name]


def build_dense_loss(name: str, num_classes: int, class_frequencies: Sequence[str] | None = None,
                     **options: Any) -> DenseClassificationLoss:
    """Build the dense loss registered under ``name`` (one of ``DENSE_LOSSES``) with ``options``; the training
    set's ``class_frequencies`` go to the losses that take them (``DenseACSL``)."""
    try:
        cls = DENSE_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown one-stage loss {name!r}; registered: {', '.join(sorted(DENSE_LOSSES))}") from None
    if "class_frequencies" in inspect.signature(cls.__init__).parameters:
        options["class_frequencies"] = class_frequencies
    try:
        return cls(num_classes=num_classes, **options)
    except TypeError as error:
        raise ValueError(f"bad options for loss {name!r}: {error}") from None


def build_loss(
    name: str,
    num_classes: int,
    class_frequencies: Sequence[str] | None = None,
    class_image_counts: Sequence[int] | None = None,
    class_instance_counts: Sequence[int] | None = None,
    num_images: int | None = None,
    **options: Any,
) -> ClassificationLoss:
    """Build the loss registered under ``name`` (one of ``LOSSES``) with its hyper-parameters ``options``.

    The training set's statistics — ``class_frequencies`` ('r'/'c'/'f'), and for the losses that need
    them (``requires_counts``) the per-class image and instance counts and the number of images — come
    from the dataset, never from the options."""
    try:
        cls = LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; registered losses: {', '.join(sorted(LOSSES))}") from None
    statistics: dict[str, Any] = {}
    if cls.requires_counts:
        statistics = {"class_image_counts": class_image_counts, "class_instance_counts": class_instance_counts,
                      "num_images": num_images}
    try:
        return cls(num_classes=num_classes, class_frequencies=class_frequencies, **statistics, **options)
    except TypeError as error:
        raise ValueError(f"bad options for loss {name!r}: {error}") from None
