"""torchvision's RoI heads with a pluggable classification loss and loss-dependent test scoring.

Everything else is torchvision's: proposal sampling (``select_training_samples``), RoIAlign pooling, the
2-FC box head, the box-regression loss (smooth L1 from ``fastrcnn_loss``) and the box decoding. Only two
things change (docs/ARCHITECTURE.md, "The method, exactly"):
- training: ``loss_classifier`` comes from the chosen ``ClassificationLoss`` (ACSL, softmax CE, BCE, ...);
- test: class scores are ``loss.scores(logits)`` — softmax for softmax-trained heads, σ(z) for sigmoid
  ones — and the background column is dropped, not multiplied in.

In training, ``pooled`` may replace RoIAlign: a function of each image's sampled candidate indices (its
proposals followed by its ground-truth boxes, as ``add_gt_proposals`` concatenates them) and sampled boxes
that gives their pooled features, e.g. read from a cache (``acsl.engine.pooled_cache``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss
from torchvision.ops import boxes as box_ops

from ..losses.base import ClassificationLoss


class LongTailRoIHeads(RoIHeads):
    """Box-only ``RoIHeads`` whose classification loss is ``classification_loss``."""

    def __init__(self, *args, classification_loss: ClassificationLoss, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.classification_loss = classification_loss

    def forward(self, features, proposals, image_shapes, targets=None, pooled=None):  # type: ignore[override]
        """``pooled`` (training only): (sampled candidate indices, sampled boxes) per image → their pooled
        features [N, C, 7, 7], used instead of RoIAlign on ``features``."""
        if self.training:
            if targets is None:
                raise ValueError("LongTailRoIHeads: targets are required in training mode")
            # Under bf16 autocast the RPN's proposals come out in bf16 (4 px steps near 1000 px); match and
            # encode targets in fp32, as torchvision does without autocast.
            proposals = [p.float() for p in proposals]
            if pooled is None:
                proposals, _, labels, regression_targets = self.select_training_samples(proposals, targets)
            else:
                proposals, sampled, labels, regression_targets = sample_training_rois(
                    self, proposals, targets, getattr(pooled, "assign", None))
        if self.training and pooled is not None:
            box_features = pooled(sampled, proposals)
        else:
            box_features = self.box_roi_pool(features, proposals, image_shapes)
        hidden = box_head_on(self.box_head, box_features, after_fc6=self.training and getattr(pooled, "after_fc6", False))
        class_logits, box_regression = self.box_predictor(hidden)

        if self.training:
            _, loss_box_reg = fastrcnn_loss(class_logits, box_regression, labels, regression_targets)
            loss_classifier = self.classification_loss(class_logits, torch.cat(labels, dim=0))
            return [], {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}

        boxes, scores, labels = self.postprocess_detections(class_logits, box_regression, proposals, image_shapes)
        detections = [{"boxes": b, "scores": s, "labels": l} for b, s, l in zip(boxes, scores, labels)]
        return detections, {}

    @property
    def classifiers(self) -> list[torch.nn.Module]:
        """The final classification layer(s) that the decoupled stage 2 trains."""
        return [self.box_predictor.cls_score]

    @property
    def samplers(self) -> list:
        return [self.fg_bg_sampler]

    @property
    def predictors(self) -> list[torch.nn.Module]:
        """The box predictor(s) whose ``cls_score`` is the classifier."""
        return [self.box_predictor]

    def postprocess_detections(self, class_logits, box_regression, proposals, image_shapes):  # type: ignore[override]
        """Score every (proposal, class) with the loss's test-time rule, drop the background column, decode
        one box per class, then ``select_detections``."""
        scores = self.classification_loss.scores(class_logits)[:, 1:]
        # [N, C + 1, 4] even for N = 0: torchvision's decode returns a flat [0, 4(C + 1)] tensor when the
        # whole batch has no proposal, and slicing that would drop a coordinate, not the background.
        boxes = self.box_coder.decode(box_regression, proposals)
        boxes = boxes.reshape(box_regression.shape[0], box_regression.shape[1] // 4, 4)[:, 1:]
        return select_detections(scores, boxes, [len(p) for p in proposals], image_shapes,
                                 self.score_thresh, self.nms_thresh, self.detections_per_img)


def box_head_on(box_head: torch.nn.Module, rows: torch.Tensor, after_fc6: bool = False) -> torch.Tensor:
    """torchvision's ``TwoMLPHead`` on pooled features [N, C, h, w]; ``after_fc6``: on rows that are already its
    frozen first layer's outputs [N, hidden] (``acsl.engine.pooled_cache``), so only relu(fc7(·)) is left."""
    return torch.relu(box_head.fc7(rows)) if after_fc6 else box_head(rows)


def sample_training_rois(heads: RoIHeads, proposals: list[torch.Tensor], targets: list[dict[str, torch.Tensor]],
                         assign: Callable | None = None):
    """torchvision's ``RoIHeads.select_training_samples`` step by step (the same matching, draw and
    regression targets), returning each image's sampled indices into its candidates (its proposals, then
    its ground-truth boxes: ``add_gt_proposals``' order) where it returns the matched ground truth:
    (sampled boxes, sampled indices, labels, regression targets). ``assign`` (default
    ``heads.assign_targets_to_proposals``) is called as ``assign(heads, candidates, gt_boxes, gt_labels)``: the
    pooled-row cache passes one that matches each fixed (image, flip) once (``acsl.engine.pooled_cache``)."""
    heads.check_targets(targets)
    dtype, device = proposals[0].dtype, proposals[0].device
    gt_boxes = [t["boxes"].to(dtype) for t in targets]
    proposals = heads.add_gt_proposals(proposals, gt_boxes)
    gt_labels = [t["labels"] for t in targets]
    if assign is None:
        matched_idxs, labels = heads.assign_targets_to_proposals(proposals, gt_boxes, gt_labels)
    else:
        matched_idxs, labels = assign(heads, proposals, gt_boxes, gt_labels)
    sampled = heads.subsample(labels)
    matched_gt_boxes = []
    for image, image_sampled in enumerate(sampled):
        proposals[image] = proposals[image][image_sampled]
        labels[image] = labels[image][image_sampled]
        image_gt = gt_boxes[image] if gt_boxes[image].numel() else torch.zeros((1, 4), dtype=dtype, device=device)
        matched_gt_boxes.append(image_gt[matched_idxs[image][image_sampled]])
    return proposals, sampled, labels, heads.box_coder.encode(matched_gt_boxes, proposals)


def select_detections(
    scores: torch.Tensor,
    boxes: torch.Tensor,
    counts: list[int],
    image_shapes: list[tuple[int, int]],
    score_thresh: float,
    nms_thresh: float,
    detections_per_img: int,
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Per image: ``scores`` [N, C] and ``boxes`` [N, C, 4] of its proposals (foreground classes only);
    clip boxes, keep scores above ``score_thresh``, drop empty boxes, class-wise NMS at ``nms_thresh``,
    then the ``detections_per_img`` best. Labels count from 1 (0 is background)."""
    class_ids = torch.arange(1, scores.shape[-1] + 1, device=scores.device)
    out_boxes, out_scores, out_labels = [], [], []
    for image_boxes, image_scores, shape in zip(boxes.split(counts), scores.split(counts), image_shapes):
        image_boxes = box_ops.clip_boxes_to_image(image_boxes, shape).reshape(-1, 4)
        labels = class_ids.repeat(image_scores.shape[0])
        image_scores = image_scores.reshape(-1)
        keep = (image_scores > score_thresh).nonzero().squeeze(1)
        keep = keep[box_ops.remove_small_boxes(image_boxes[keep], min_size=1e-2)]
        image_boxes, image_scores, labels = image_boxes[keep], image_scores[keep], labels[keep]
        keep = box_ops.batched_nms(image_boxes, image_scores, labels, nms_thresh)[:detections_per_img]
        out_boxes.append(image_boxes[keep])
        out_scores.append(image_scores[keep])
        out_labels.append(labels[keep])
    return out_boxes, out_scores, out_labels
