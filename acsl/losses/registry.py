"""Name → loss class registry, so experiment specs, the CLI and notebooks name losses by string."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .acsl import ACSL
from .base import ClassificationLoss
from .sigmoid_bce import SigmoidBCE
from .softmax_ce import SoftmaxCE

LOSSES: dict[str, type[ClassificationLoss]] = {
    "acsl": ACSL,
    "softmax_ce": SoftmaxCE,
    "bce": SigmoidBCE,
}


def build_loss(
    name: str,
    num_classes: int,
    class_frequencies: Sequence[str] | None = None,
    **options: Any,
) -> ClassificationLoss:
    """Build the loss registered under ``name`` (one of ``LOSSES``) with its hyper-parameters ``options``."""
    try:
        cls = LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; registered losses: {', '.join(sorted(LOSSES))}") from None
    try:
        return cls(num_classes=num_classes, class_frequencies=class_frequencies, **options)
    except TypeError as error:
        raise ValueError(f"bad options for loss {name!r}: {error}") from None
