"""RetinaNet (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017) assembled from torchvision's
components, its classification subnet trained by one of acsl's dense losses (``acsl.losses.dense``,
``acsl.losses.efl``): the one-stage detector of the comparison beyond the paper (docs/ARCHITECTURE.md,
"A one-stage detector").

Shapes, for B images, A anchors per location, C classes and N anchors per image (Σ over levels of H·W·A):

- ``cls_logits`` [B, N, C]: C sigmoid classifiers per anchor, no background column (the dense layout);
- ``bbox_regression`` [B, N, 4]: torchvision's box deltas.

Training (``DenseLossClassificationHead.compute_loss``): torchvision's anchor matching (IoU ≥ 0.5 foreground,
< 0.4 background, in between ignored, and each ground truth's best anchors foreground too); each anchor gets the
dense layout's label (0 background, k ∈ 1..C its class, −1 ignored), and the classification loss is the dense
loss over all the batch's anchors divided by the batch's foreground anchors (mmdetection's and
United-Perception's normalisation, which EFL's authors use; torchvision's focal loss divides each image by its
own foreground anchors and averages the images). Under torchrun each process divides by its own share's
foreground anchors (and the training step weights the processes by their images), where those frameworks divide
by the count averaged over the processes: the same in one process, close in several. The box loss is
torchvision's.

Test: σ(z) per class and anchor (every dense loss scores so), torchvision's per-level top 1000, score floor,
class-wise NMS at 0.5 and the detections cap; labels 1..C, as the two-stage detectors give them.

Deliberate differences from the paper's RetinaNet, for the CPU profiles' 128-pixel images: the pyramid is the
backbone's stride 8–64 maps (P3–P6; the stride-4 map is dropped and there is no P7) with one anchor size per
level (the detector config's sizes from the second on) in three aspect ratios, so A = 3 (the paper: 9).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.models.detection._utils import Matcher
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.retinanet import RetinaNet, RetinaNetClassificationHead, RetinaNetHead

from ..config import DetectorConfig
from ..losses.dense import DenseClassificationLoss
from .backbones import build_backbone
from .weights import load_weights_file

#: The FPN maps RetinaNet does not use: the stride-4 map (RetinaNet starts at P3, stride 8).
DROPPED_LEVELS = ("0",)
ASPECT_RATIOS = (0.5, 1.0, 2.0)


class PyramidFromP3(nn.Module):
    """The backbone's FPN maps from stride 8 on (``DROPPED_LEVELS`` left out), in order."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.pyramid = backbone
        self.out_channels = backbone.out_channels

    def forward(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict((name, level) for name, level in self.pyramid(images).items() if name not in DROPPED_LEVELS)


class DenseLossClassificationHead(RetinaNetClassificationHead):
    """torchvision's classification subnet (four 3×3 convolutions and ``cls_logits``, A·C outputs per location)
    whose loss is ``loss`` and whose bias starts at the loss's prior (``loss.initial_bias()``, every anchor)."""

    def __init__(self, in_channels: int, num_anchors: int, loss: DenseClassificationLoss) -> None:
        super().__init__(in_channels, num_anchors, loss.num_classes)
        self.loss = loss
        with torch.no_grad():
            self.cls_logits.bias.copy_(loss.initial_bias().repeat(num_anchors))

    def compute_loss(self, targets: list[dict[str, torch.Tensor]], head_outputs: dict[str, torch.Tensor],
                     matched_idxs: list[torch.Tensor]) -> torch.Tensor:
        """The dense loss over the batch's anchors, labels from the matching (module docstring)."""
        labels = torch.cat([anchor_labels(t["labels"], matched) for t, matched in zip(targets, matched_idxs)])
        logits = head_outputs["cls_logits"]
        return self.loss(logits.reshape(-1, logits.shape[-1]), labels)


def anchor_labels(gt_labels: torch.Tensor, matched: torch.Tensor) -> torch.Tensor:
    """[N] dense-layout labels of one image's anchors from the matcher's indices: the matched ground truth's
    label (1..C), 0 for a background anchor (``Matcher.BELOW_LOW_THRESHOLD``), −1 for an ignored one
    (``Matcher.BETWEEN_THRESHOLDS``)."""
    labels = torch.zeros_like(matched)
    foreground = matched >= 0
    labels[foreground] = gt_labels[matched[foreground]].to(labels.dtype)
    labels[matched == Matcher.BETWEEN_THRESHOLDS] = -1
    return labels


class LongTailRetinaNetHead(RetinaNetHead):
    """torchvision's two subnets. While the box subnet is frozen (a fine-tune: ``config.frozen_rpn``) training does
    not run it: its loss would reach no trainable weight, so the weights train exactly as with it, and it is about
    a third of the step. In evaluation both run."""

    @property
    def box_subnet_trains(self) -> bool:
        return any(p.requires_grad for p in self.regression_head.parameters())

    def forward(self, x: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.training and not self.box_subnet_trains:
            return {"cls_logits": self.classification_head(x)}
        return super().forward(x)

    def compute_loss(self, targets, head_outputs, anchors, matched_idxs):  # type: ignore[override]
        losses = {"classification": self.classification_head.compute_loss(targets, head_outputs, matched_idxs)}
        if "bbox_regression" in head_outputs:
            losses["bbox_regression"] = self.regression_head.compute_loss(targets, head_outputs, anchors, matched_idxs)
        return losses


class LongTailRetinaNet(RetinaNet):
    """torchvision's ``RetinaNet`` with a dense loss on its classification subnet; detections labelled 1..C."""

    def postprocess_detections(self, head_outputs, anchors, image_shapes):  # type: ignore[override]
        detections = super().postprocess_detections(head_outputs, anchors, image_shapes)
        for detection in detections:  # torchvision labels a column c as c; the two-stage detectors' labels are c + 1
            detection["labels"] = detection["labels"] + 1
        return detections

    @property
    def classification_loss(self) -> DenseClassificationLoss:
        return self.head.classification_head.loss

    @property
    def classifiers(self) -> list[nn.Conv2d]:
        """The final classification layer (``cls_logits``), as the two-stage detectors' ``classifiers``."""
        return [self.head.classification_head.cls_logits]


def build_retinanet(config: DetectorConfig, num_classes: int, loss: DenseClassificationLoss) -> LongTailRetinaNet:
    """RetinaNet on ``config``'s backbone and FPN for ``num_classes`` classes, its classification subnet trained
    by the dense ``loss``. A fine-tune from a pretrained start freezes as the two-stage ones do: the backbone and
    FPN (``config.frozen_backbone``) and the class-agnostic box subnet (``config.frozen_rpn``, the RPN's
    counterpart), so the classification subnet alone trains."""
    if loss.num_classes != num_classes:
        raise ValueError(f"loss was built for {loss.num_classes} classes, the detector for {num_classes}")
    if config.init is not None:
        raise ValueError(f"a RetinaNet starts from its own pretrained start (load_retinanet_init), not from "
                         f"init={config.init!r} (a Faster R-CNN's weights)")
    backbone = PyramidFromP3(build_backbone(config.backbone, config.fpn_channels, config.pretrained_backbone,
                                            frozen_norm=config.frozen_norm or config.init is not None))
    sizes = config.anchor_sizes[len(DROPPED_LEVELS):]
    anchor_generator = AnchorGenerator(sizes=tuple((size,) for size in sizes), aspect_ratios=(ASPECT_RATIOS,) * len(sizes))
    num_anchors = anchor_generator.num_anchors_per_location()[0]
    head = LongTailRetinaNetHead(backbone.out_channels, num_anchors, num_classes)
    head.classification_head = DenseLossClassificationHead(backbone.out_channels, num_anchors, loss)
    model = LongTailRetinaNet(backbone, num_classes, min_size=config.min_size, max_size=config.max_size,
                              anchor_generator=anchor_generator, head=head, score_thresh=config.score_thresh,
                              nms_thresh=config.nms_thresh, detections_per_img=config.detections_per_img)
    if config.frozen_backbone:
        backbone.requires_grad_(False)
    if config.frozen_rpn:  # the class-agnostic box subnet is the start's, as Faster R-CNN's RPN is
        head.regression_head.requires_grad_(False)
    return model


def load_retinanet_init(model: LongTailRetinaNet, init: str) -> None:
    """Initialise every layer but the classifier (``cls_logits``, which keeps its fresh C outputs at the loss's
    prior) from a trained RetinaNet of the same backbone: the pretrained start's saved state dict, or an acsl
    checkpoint with a ``"model"`` entry (``acsl.models.weights.load_weights_file``)."""
    state = load_weights_file(init)
    own = model.state_dict()

    def loaded(key: str) -> bool:
        return (not key.startswith("head.classification_head.cls_logits.") and ".loss." not in key
                and not key.endswith("num_batches_tracked"))

    weights = {k: v for k, v in state.items() if loaded(k)}
    mismatched = [k for k, v in weights.items() if k in own and own[k].shape != v.shape]
    unexpected = [k for k in weights if k not in own]
    missing = [k for k in own if k not in weights and loaded(k)]
    if mismatched or unexpected or missing:
        raise RuntimeError(f"init weights {init} do not fit this RetinaNet: mismatched shapes {mismatched[:3]}, "
                           f"unexpected {unexpected[:3]}, missing {missing[:3]}")
    model.load_state_dict(weights, strict=False)

