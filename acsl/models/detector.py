"""Faster R-CNN with FPN (Ren et al.; Lin et al.) assembled from torchvision's components, with C + 1
box-classifier outputs whose loss and test scoring follow the chosen long-tail loss
(docs/ARCHITECTURE.md, "How a run flows" and "The method, exactly").

The assembly mirrors torchvision's ``FasterRCNN`` constructor: anchor generator → RPN → multi-scale
RoIAlign → two-FC box head → ``FastRCNNPredictor``; only the RoI heads are ``LongTailRoIHeads``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import MultiScaleRoIAlign

from ..config import DetectorConfig
from ..losses.base import ClassificationLoss
from .backbones import build_backbone
from .cascade import CascadeRoIHeads
from .retinanet import LongTailRetinaNet, build_retinanet, load_retinanet_init
from .roi_heads import LongTailRoIHeads
from .classifiers import initialise_classifier, install_classifier
from .sampling import SAMPLING_KEY, KeyedBalancedSampler
from .weights import load_weights_file, torchvision_weights


class LongTailFasterRCNN(GeneralizedRCNN):
    """torchvision's ``GeneralizedRCNN`` with ``LongTailRoIHeads``; ``classifier`` is the final linear
    layer that the decoupled stage 2 trains alone.

    In training, targets may carry a ``"sampling_key"`` (an integer per image, set by the trainer); the
    RPN's and RoI head's samplers then draw each image's anchors and RoIs from that key alone
    (``KeyedBalancedSampler``), so a batch split over processes trains like the whole batch in one.
    """

    @property
    def samplers(self) -> list[KeyedBalancedSampler]:
        return [s for s in (self.rpn.fg_bg_sampler, *self.roi_heads.samplers) if isinstance(s, KeyedBalancedSampler)]

    @contextmanager
    def sampling_keys(self, keys: list[int] | None) -> Iterator[None]:
        """Within the block, image i's anchors and RoIs are drawn from ``keys[i]`` (None: torchvision's draw)."""
        for sampler in self.samplers:
            sampler.image_keys = keys
        try:
            yield
        finally:
            for sampler in self.samplers:
                sampler.image_keys = None

    def forward(self, images, targets=None):  # type: ignore[override]
        keys = None
        if self.training and targets and all(SAMPLING_KEY in t for t in targets):
            keys = [int(t[SAMPLING_KEY]) for t in targets]
        with self.sampling_keys(keys):
            return super().forward(images, targets)

    @property
    def classifiers(self) -> list[nn.Linear]:
        """The final classification layer of every box head (one; three for Cascade R-CNN)."""
        return self.roi_heads.classifiers

    @property
    def classification_loss(self) -> ClassificationLoss:
        return self.roi_heads.classification_loss


def build_detector(config: DetectorConfig, num_classes: int, loss: ClassificationLoss) -> LongTailFasterRCNN:
    """Faster R-CNN FPN (or Cascade R-CNN FPN, ``config.architecture``) for ``num_classes`` foreground
    classes whose box classifier(s) are trained by ``loss``."""
    if config.architecture == "retinanet":  # one-stage: its loss is a dense one (acsl.losses.DENSE_LOSSES)
        return build_retinanet(config, num_classes, loss)
    if loss.num_classes != num_classes:
        raise ValueError(f"loss was built for {loss.num_classes} classes, the detector for {num_classes}")
    if config.architecture not in ARCHITECTURES:
        raise ValueError(f"unknown detector architecture {config.architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
    backbone = build_backbone(config.backbone, config.fpn_channels, config.pretrained_backbone,
                              frozen_norm=config.frozen_norm or config.init is not None)
    anchor_generator = AnchorGenerator(
        sizes=tuple((size,) for size in config.anchor_sizes),
        aspect_ratios=((0.5, 1.0, 2.0),) * len(config.anchor_sizes),
    )
    rpn = RegionProposalNetwork(
        anchor_generator,
        RPNHead(backbone.out_channels, anchor_generator.num_anchors_per_location()[0]),
        fg_iou_thresh=0.7,
        bg_iou_thresh=0.3,
        batch_size_per_image=config.rpn_batch_size_per_image,
        positive_fraction=0.5,
        pre_nms_top_n={"training": config.rpn_pre_nms_top_n_train, "testing": config.rpn_pre_nms_top_n_test},
        post_nms_top_n={"training": config.rpn_post_nms_top_n_train, "testing": config.rpn_post_nms_top_n_test},
        nms_thresh=0.7,
    )
    pool = MultiScaleRoIAlign(featmap_names=["0", "1", "2", "3"], output_size=7, sampling_ratio=2)
    if config.architecture == "cascade_rcnn":
        roi_heads = CascadeRoIHeads(
            pool, backbone.out_channels * 7 * 7, config.representation_size, num_classes, loss,
            batch_size_per_image=config.rois_per_image, positive_fraction=config.positive_fraction,
            score_thresh=config.score_thresh, nms_thresh=config.nms_thresh, detections_per_img=config.detections_per_img,
        )
    else:
        roi_heads = LongTailRoIHeads(
            pool,
            TwoMLPHead(backbone.out_channels * 7 * 7, config.representation_size),
            FastRCNNPredictor(config.representation_size, num_classes + 1),
            fg_iou_thresh=0.5,
            bg_iou_thresh=0.5,
            batch_size_per_image=config.rois_per_image,
            positive_fraction=config.positive_fraction,
            bbox_reg_weights=None,
            score_thresh=config.score_thresh,
            nms_thresh=config.nms_thresh,
            detections_per_img=config.detections_per_img,
            classification_loss=loss,
        )
        roi_heads.fg_bg_sampler = KeyedBalancedSampler(config.rois_per_image, config.positive_fraction, salt=2)
        install_classifier(roi_heads.box_predictor, loss, config.representation_size)
    for classifier in roi_heads.classifiers:
        initialise_classifier(classifier, loss)
    transform = GeneralizedRCNNTransform(
        config.min_size, config.max_size, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]
    )
    rpn.fg_bg_sampler = KeyedBalancedSampler(config.rpn_batch_size_per_image, 0.5, salt=1)
    model = LongTailFasterRCNN(backbone, rpn, roi_heads, transform)
    if config.init is not None:
        load_detector_init(model, config.init)
    if config.frozen_backbone:  # a fine-tune of the RPN and RoI heads on pretrained features
        backbone.requires_grad_(False)
    if config.frozen_rpn:  # and of the RoI heads alone, on cached proposals (acsl.engine.proposal_cache)
        rpn.requires_grad_(False)
    if config.frozen_fc6:
        for heads in getattr(roi_heads, "stages", [roi_heads]):
            heads.box_head.fc6.requires_grad_(False)
    return model


TORCHVISION_COCO = "torchvision-coco"
ARCHITECTURES = ("faster_rcnn", "cascade_rcnn", "retinanet")


def load_detector_init(model: LongTailFasterRCNN, init: str) -> None:
    """Initialise every layer but the box predictor from a trained Faster R-CNN FPN (the official ACSL code
    starts from a COCO-trained detector; Cascade R-CNN: each of its three box heads starts from the Faster R-CNN's
    two-FC box head; docs/ARCHITECTURE.md, "Training recipe"). The predictors keep their fresh C + 1 outputs.

    ``init`` is ``"torchvision-coco"`` — torchvision's ``FasterRCNN_ResNet50_FPN_Weights.COCO_V1``,
    downloaded once into ``torch.hub.get_dir()``/checkpoints (on a machine without internet, copy
    ``fasterrcnn_resnet50_fpn_coco-258fb6c6.pth`` there) — or the path of a saved state dict (a
    torchvision Faster R-CNN's, or an acsl checkpoint with a ``"model"`` entry). A missing, corrupt or
    truncated file raises ``acsl.models.weights.WeightsFileError`` naming it and the remedies.
    """
    if isinstance(model, LongTailRetinaNet):
        load_retinanet_init(model, init)
        return
    if init == TORCHVISION_COCO:
        from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

        weights = FasterRCNN_ResNet50_FPN_Weights.COCO_V1
        with torchvision_weights(weights.url, "torchvision's COCO-trained Faster R-CNN R50-FPN"):
            state = weights.get_state_dict(progress=True, check_hash=True)
    else:
        state = load_weights_file(init)
    own = model.state_dict()
    fresh = ("roi_heads.box_predictor.",) + tuple(
        f"roi_heads.stages.{t}.box_predictor." for t in range(len(getattr(model.roi_heads, "stages", ()))))

    def loaded(key: str) -> bool:
        return not key.startswith(fresh) and ".classification_loss." not in key and not key.endswith("num_batches_tracked")

    weights = {k: v for k, v in state.items() if loaded(k)}  # frozen batch norms keep no counter
    if isinstance(model.roi_heads, CascadeRoIHeads):  # the Faster R-CNN's box head starts every stage's box head
        head = {k: weights.pop(k) for k in list(weights) if k.startswith("roi_heads.box_head.")}
        for t in range(len(model.roi_heads.stages)):
            weights.update({k.replace("roi_heads.", f"roi_heads.stages.{t}.", 1): v for k, v in head.items()})
    mismatched = [k for k, v in weights.items() if k in own and own[k].shape != v.shape]
    unexpected = [k for k in weights if k not in own]
    missing = [k for k in own if k not in weights and loaded(k)]
    if mismatched or unexpected or missing:
        raise RuntimeError(
            f"init weights {init} do not fit this detector: "
            f"mismatched shapes {mismatched[:3]}, unexpected {unexpected[:3]}, missing {missing[:3]}"
        )
    model.load_state_dict(weights, strict=False)
