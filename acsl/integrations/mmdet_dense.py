"""acsl's one-stage (dense) classification losses as the ``loss_cls`` of mmdet's anchor heads (RetinaNet's
``RetinaHead`` and any ``AnchorHead``): ``acsl.EFL`` and ``acsl.DenseFocalLoss`` (docs/ARCHITECTURE.md, "mmdet
integration"), and ``acsl.DenseACSL``, ACSL's rule on anchors (``acsl.losses.dense.DenseACSL``, with ``ann_file``
for the frequency groups). Registered when ``acsl.integrations.mmdet`` is imported::

    bbox_head=dict(type="RetinaHead", num_classes=1203,
                   loss_cls=dict(_delete_=True, type="acsl.EFL", num_classes=1203, use_sigmoid=True))

``use_sigmoid=True`` is what mmdet's anchor head reads from the config to give one output per class (no
background); the adapter requires it. Layouts: mmdet passes each FPN level's ``cls_score`` as [N, C] rows of
(location, anchor) with labels 0..C−1 for classes, C for the background, and ``label_weights`` 0 for ignored
anchors, normalised by ``avg_factor``; acsl's dense losses take labels 1..C, 0 and −1 (``acsl.losses.dense``).
The head's classifier bias starts at the loss's prior when mmengine initialises the model (EFL: 0.001, where
RetinaHead's own init_cfg sets 0.01), as ``acsl.integrations.mmdet.MMDetLoss`` does for the bbox heads.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import nn

# as modules: the adapters are module attributes named after their mmdet types, which are some loss classes' names
from ..losses import dense as dense_losses
from ..losses import efl as efl_losses
from .mmdet_scope import SCOPE, head_being_built

#: mmdet type (without the scope) → acsl dense loss class.
DENSE_LOSS_TYPES: dict[str, type[dense_losses.DenseClassificationLoss]] = {
    "EFL": efl_losses.EqualizedFocalLoss, "DenseFocalLoss": dense_losses.DenseFocalLoss,
    "DenseACSL": dense_losses.DenseACSL}


class MMDetDenseLoss(nn.Module):
    """An acsl dense loss as an mmdet anchor head's ``loss_cls`` (one subclass per ``DENSE_LOSS_TYPES``).

    Args:
        num_classes: C, the head's classes.
        use_sigmoid: must be True (mmdet's anchor head reads it from the config to drop the background output).
        loss_weight: multiplies the loss.
        options: the acsl loss's own options (EFL: ``gamma_b``, ``scale_factor``, ``alpha``).
    """

    loss_class: type[dense_losses.DenseClassificationLoss] = dense_losses.DenseClassificationLoss

    def __init__(self, num_classes: int, use_sigmoid: bool = True, loss_weight: float = 1.0,
                 ann_file: str | None = None, **options: Any) -> None:
        super().__init__()
        if not use_sigmoid:
            raise ValueError(f"{SCOPE}.{type(self).__name__} trains C sigmoid classifiers: set use_sigmoid=True")
        self.use_sigmoid = True
        if self.loss_class is dense_losses.DenseACSL:  # the frequency groups of the training set's LVIS file, in mmdet's order
            if ann_file is None:
                raise ValueError(f"{SCOPE}.{type(self).__name__}: give ann_file (the training set's LVIS annotation file)")
            from .mmdet import class_statistics

            options["class_frequencies"] = class_statistics(ann_file).frequencies
        self.loss = self.loss_class(int(num_classes), **options)
        self.loss_weight = float(loss_weight)
        self._head = head_being_built(self, "AnchorHead")

    def init_weights(self) -> None:
        """Start the head's classifier (``retina_cls`` or ``conv_cls``) at the loss's prior, on every anchor."""
        head = self._head() if self._head is not None else None
        classifier = getattr(head, "retina_cls", None) or getattr(head, "conv_cls", None)
        if classifier is None or getattr(classifier, "bias", None) is None:
            return
        prior = self.loss.initial_bias()
        with torch.no_grad():
            classifier.bias.copy_(prior.repeat(classifier.bias.numel() // prior.numel()).to(classifier.bias))

    def forward(self, cls_score: torch.Tensor, labels: torch.Tensor, label_weights: torch.Tensor | None = None,
                avg_factor: float | None = None, reduction_override: str | None = None) -> torch.Tensor:
        if reduction_override not in (None, "mean", "sum"):
            raise ValueError(f"{SCOPE}.{type(self).__name__}: reduction {reduction_override!r} is not supported")
        c = self.loss.num_classes
        labels = labels.long()
        ours = torch.where(labels == c, torch.zeros_like(labels), labels + 1)
        if label_weights is not None:  # 0: an ignored anchor; other weights (a pos_weight ≠ 1) are refused
            torch._assert_async(((label_weights == 0) | (label_weights == 1)).all(),
                                f"{SCOPE}.{type(self).__name__}: anchor weights other than 0 and 1")
            ours = torch.where(label_weights > 0, ours, torch.full_like(ours, -1))
        return self.loss_weight * self.loss(cls_score, ours, avg_factor)


def register_dense_losses(models) -> dict[str, type[MMDetDenseLoss]]:
    """Register one adapter class per ``DENSE_LOSS_TYPES`` in ``models`` (acsl's scope of mmdet's MODELS)."""
    adapters = {}
    for type_name, loss_class in DENSE_LOSS_TYPES.items():
        adapter = type(type_name, (MMDetDenseLoss,), {
            "loss_class": loss_class, "__module__": __name__,
            "__doc__": f"mmdet adapter of acsl's ``{loss_class.__name__}`` (see ``MMDetDenseLoss``)."})
        models.register_module(name=type_name, module=adapter, force=True)
        setattr(sys.modules[__name__], type_name, adapter)  # a module attribute of its name: pickle finds it
        adapters[type_name] = adapter
    return adapters
