"""torchvision's RoI heads with a pluggable classification loss and loss-dependent test scoring.

Everything else is torchvision's: proposal sampling (``select_training_samples``), RoIAlign pooling, the
2-FC box head, the box-regression loss (smooth L1 from ``fastrcnn_loss``) and the box decoding. Only two
things change (DESIGN §3):
- training: ``loss_classifier`` comes from the chosen ``ClassificationLoss`` (ACSL, softmax CE, BCE, ...);
- test: class scores are ``loss.scores(logits)`` — softmax for softmax-trained heads, σ(z) for sigmoid
  ones — and the background column is dropped, not multiplied in.
"""

from __future__ import annotations

import torch
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss
from torchvision.ops import boxes as box_ops

from ..losses.base import ClassificationLoss


class LongTailRoIHeads(RoIHeads):
    """Box-only ``RoIHeads`` whose classification loss is ``classification_loss``."""

    def __init__(self, *args, classification_loss: ClassificationLoss, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.classification_loss = classification_loss

    def forward(self, features, proposals, image_shapes, targets=None):  # type: ignore[override]
        if self.training:
            if targets is None:
                raise ValueError("LongTailRoIHeads: targets are required in training mode")
            proposals, _, labels, regression_targets = self.select_training_samples(proposals, targets)
        pooled = self.box_roi_pool(features, proposals, image_shapes)
        class_logits, box_regression = self.box_predictor(self.box_head(pooled))

        if self.training:
            _, loss_box_reg = fastrcnn_loss(class_logits, box_regression, labels, regression_targets)
            loss_classifier = self.classification_loss(class_logits, torch.cat(labels, dim=0))
            return [], {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}

        boxes, scores, labels = self.postprocess_detections(class_logits, box_regression, proposals, image_shapes)
        detections = [{"boxes": b, "scores": s, "labels": l} for b, s, l in zip(boxes, scores, labels)]
        return detections, {}

    def postprocess_detections(self, class_logits, box_regression, proposals, image_shapes):  # type: ignore[override]
        """Per image: decode one box per (proposal, class), score it with the loss's test-time rule, drop
        the background column, keep scores above ``score_thresh``, drop empty boxes, class-wise NMS at
        ``nms_thresh``, then the ``detections_per_img`` best."""
        num_columns = class_logits.shape[-1]
        scores_all = self.classification_loss.scores(class_logits)[:, 1:]
        boxes_all = self.box_coder.decode(box_regression, proposals)[:, 1:]
        counts = [len(p) for p in proposals]
        class_ids = torch.arange(1, num_columns, device=class_logits.device)

        out_boxes, out_scores, out_labels = [], [], []
        for boxes, scores, shape in zip(boxes_all.split(counts), scores_all.split(counts), image_shapes):
            boxes = box_ops.clip_boxes_to_image(boxes, shape).reshape(-1, 4)
            labels = class_ids.repeat(scores.shape[0])
            scores = scores.reshape(-1)
            keep = (scores > self.score_thresh).nonzero().squeeze(1)
            keep = keep[box_ops.remove_small_boxes(boxes[keep], min_size=1e-2)]
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = box_ops.batched_nms(boxes, scores, labels, self.nms_thresh)[: self.detections_per_img]
            out_boxes.append(boxes[keep])
            out_scores.append(scores[keep])
            out_labels.append(labels[keep])
        return out_boxes, out_scores, out_labels
