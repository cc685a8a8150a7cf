"""Softmax cross-entropy over the C + 1 columns: the paper's baseline (Table 2, "baseline")."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import ClassificationLoss


class SoftmaxCE(ClassificationLoss):
    """L = −log softmax(z)_k, averaged over the N RoIs, as torchvision's ``fastrcnn_loss`` does.

    Scores at test time are ``softmax(z)``; the detector drops the background column.
    """

    use_sigmoid = False

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, labels.long())
