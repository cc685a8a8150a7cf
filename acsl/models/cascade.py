"""Cascade R-CNN box heads (Cai & Vasconcelos, CVPR 2018) on torchvision's RoI-head machinery, with a
pluggable long-tail classification loss on all three heads (the paper's Table 3: "we replace the
softmax cross-entropy loss with ACSL on all 3 heads and fine-tune the classifiers' weights in the
second training stage").

Stage t ∈ {1, 2, 3} matches its input boxes to the ground truth at IoU u_t = 0.5 / 0.6 / 0.7, samples
RoIs (ground-truth boxes added, 25 % positives), pools them, and predicts C + 1 class logits and one
class-agnostic box delta encoded with the regression weights (10, 10, 5, 5), (20, 20, 10, 10),
(30, 30, 15, 15). Its refined boxes (gradient stopped) are the next stage's input. The training loss
is Σ_t w_t (L_cls,t + L_box,t) with w = (1, 0.5, 0.25). At test time the class scores are the mean of
the three heads' scores (each head's loss decides softmax or sigmoid) and the boxes are the last
stage's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection.faster_rcnn import TwoMLPHead
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import boxes as box_ops

from ..losses.base import ClassificationLoss
from .roi_heads import box_head_on, sample_training_rois, select_detections
from .classifiers import install_classifier
from .sampling import KeyedBalancedSampler

CASCADE_IOUS = (0.5, 0.6, 0.7)
CASCADE_REG_WEIGHTS = ((10.0, 10.0, 5.0, 5.0), (20.0, 20.0, 10.0, 10.0), (30.0, 30.0, 15.0, 15.0))
CASCADE_LOSS_WEIGHTS = (1.0, 0.5, 0.25)


class ClassAgnosticPredictor(nn.Module):
    """C + 1 class logits and one box delta per RoI (Cascade R-CNN regresses class-agnostically)."""

    def __init__(self, in_channels: int, num_classes_with_background: int) -> None:
        super().__init__()
        self.cls_score = nn.Linear(in_channels, num_classes_with_background)
        self.bbox_pred = nn.Linear(in_channels, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.flatten(start_dim=1)
        return self.cls_score(x), self.bbox_pred(x)


class CascadeRoIHeads(nn.Module):
    """Three ``RoIHeads`` stages (torchvision's matcher, sampler and box coder per stage) sharing one
    RoI pooler and one classification loss."""

    def __init__(
        self,
        box_roi_pool: nn.Module,
        pooled_channels: int,
        representation_size: int,
        num_classes: int,
        classification_loss: ClassificationLoss,
        batch_size_per_image: int = 512,
        positive_fraction: float = 0.25,
        score_thresh: float = 0.0,
        nms_thresh: float = 0.5,
        detections_per_img: int = 300,
        ious: tuple[float, ...] = CASCADE_IOUS,
        reg_weights: tuple[tuple[float, float, float, float], ...] = CASCADE_REG_WEIGHTS,
        loss_weights: tuple[float, ...] = CASCADE_LOSS_WEIGHTS,
    ) -> None:
        super().__init__()
        if not len(ious) == len(reg_weights) == len(loss_weights):
            raise ValueError(f"cascade: {len(ious)} IoU thresholds, {len(reg_weights)} regression weights and "
                             f"{len(loss_weights)} loss weights; give one of each per stage")
        self.stages = nn.ModuleList()
        for index, (iou, weights) in enumerate(zip(ious, reg_weights)):
            stage = RoIHeads(
                box_roi_pool,
                TwoMLPHead(pooled_channels, representation_size),
                ClassAgnosticPredictor(representation_size, num_classes + 1),
                fg_iou_thresh=iou,
                bg_iou_thresh=iou,
                batch_size_per_image=batch_size_per_image,
                positive_fraction=positive_fraction,
                bbox_reg_weights=weights,
                score_thresh=score_thresh,
                nms_thresh=nms_thresh,
                detections_per_img=detections_per_img,
            )
            stage.fg_bg_sampler = KeyedBalancedSampler(batch_size_per_image, positive_fraction, salt=2 + index)
            install_classifier(stage.box_predictor, classification_loss, representation_size)
            self.stages.append(stage)
        self.classification_loss = classification_loss
        self.loss_weights = tuple(loss_weights)
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img

    @property
    def classifiers(self) -> list[nn.Module]:
        return [stage.box_predictor.cls_score for stage in self.stages]

    @property
    def samplers(self) -> list:
        return [stage.fg_bg_sampler for stage in self.stages]

    @property
    def predictors(self) -> list[nn.Module]:
        return [stage.box_predictor for stage in self.stages]

    def _run_stage(self, stage: RoIHeads, features, proposals, image_shapes):
        pooled = stage.box_roi_pool(features, proposals, image_shapes)
        return stage.box_predictor(stage.box_head(pooled))

    @staticmethod
    def _refine(stage: RoIHeads, deltas: torch.Tensor, proposals: list[torch.Tensor], image_shapes) -> list[torch.Tensor]:
        boxes = stage.box_coder.decode(deltas.detach().float(), proposals).reshape(-1, 4)  # fp32 under autocast
        return [box_ops.clip_boxes_to_image(b, shape) for b, shape in zip(boxes.split([len(p) for p in proposals]), image_shapes)]

    def forward(self, features, proposals, image_shapes, targets=None, pooled=None):
        """``pooled`` (training only): the first stage's (sampled candidate indices, sampled boxes) per image →
        their pooled features (or, with ``pooled.after_fc6``, its box head's frozen first layer's outputs), used
        instead of RoIAlign (its candidates are fixed; the later stages' are refined boxes and pool ``features``)."""
        if self.training:
            if targets is None:
                raise ValueError("CascadeRoIHeads: targets are required in training mode")
            loss_classifier, loss_box_reg = 0.0, 0.0
            proposals = [p.float() for p in proposals]  # bf16 proposals under autocast: match in fp32
            for index, (stage, weight) in enumerate(zip(self.stages, self.loss_weights)):
                if index == 0 and pooled is not None:
                    proposals, sampled, labels, regression_targets = sample_training_rois(
                        stage, proposals, targets, getattr(pooled, "assign", None))
                    rows = pooled(sampled, proposals)
                    logits, deltas = stage.box_predictor(box_head_on(stage.box_head, rows, getattr(pooled, "after_fc6", False)))
                else:
                    proposals, _, labels, regression_targets = stage.select_training_samples(proposals, targets)
                    logits, deltas = self._run_stage(stage, features, proposals, image_shapes)
                labels = torch.cat(labels)
                loss_classifier = loss_classifier + weight * self.classification_loss(logits, labels)
                loss_box_reg = loss_box_reg + weight * _agnostic_box_loss(deltas, torch.cat(regression_targets), labels)
                if index + 1 < len(self.stages):
                    proposals = self._refine(stage, deltas, proposals, image_shapes)
            return [], {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}

        stage_scores = []
        for index, stage in enumerate(self.stages):
            logits, deltas = self._run_stage(stage, features, proposals, image_shapes)
            stage_scores.append(self.classification_loss.scores(logits)[:, 1:])
            if index + 1 < len(self.stages):
                proposals = self._refine(stage, deltas, proposals, image_shapes)
        scores = torch.stack(stage_scores).mean(dim=0)
        last = self.stages[-1]
        boxes = last.box_coder.decode(deltas.float(), proposals).reshape(-1, 1, 4).expand(-1, scores.shape[1], 4)
        detected = select_detections(scores, boxes, [len(p) for p in proposals], image_shapes,
                                     self.score_thresh, self.nms_thresh, self.detections_per_img)
        return [{"boxes": b, "scores": s, "labels": l} for b, s, l in zip(*detected)], {}


def _agnostic_box_loss(deltas: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """torchvision's ``fastrcnn_loss`` box term for one class-agnostic delta per RoI: smooth L1
    (β = 1/9) over the positive RoIs, summed and divided by the number of sampled RoIs."""
    positive = torch.where(labels > 0)[0]
    return F.smooth_l1_loss(deltas[positive], targets[positive], beta=1 / 9, reduction="sum") / labels.numel()
