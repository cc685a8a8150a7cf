"""The torchvision Faster R-CNN with a pluggable long-tail loss: it trains with every loss, and its
test-time scores follow the loss (softmax vs sigmoid, background column dropped)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from acsl.data import collate_detection
from acsl.losses import LOSSES, build_loss
from acsl.models import BACKBONES, build_backbone, build_detector
from acsl.profiles import get_profile
from conftest import train_steps


def _detector(dataset, loss_name, **options):
    torch.manual_seed(0)
    loss = build_loss(loss_name, dataset.num_classes, dataset.frequencies, class_image_counts=dataset.image_counts,
                      class_instance_counts=dataset.instance_counts, num_images=len(dataset), **options)
    return build_detector(get_profile("smoke").detector, dataset.num_classes, loss)


@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_detector_trains_a_few_steps_and_the_loss_falls(smoke_train, loss_name):
    model = _detector(smoke_train, loss_name)
    model.train()
    images, targets = collate_detection([smoke_train[i] for i in range(4)])
    history = train_steps(model, images, targets, steps=20)
    assert sum(history[-5:]) / 5 < 0.85 * sum(history[:5]) / 5, history


@pytest.mark.parametrize("loss_name,use_sigmoid", [("softmax_ce", False), ("bce", True), ("acsl", True)])
def test_test_time_scores_follow_the_loss(smoke_val, loss_name, use_sigmoid):
    model = _detector(smoke_val, loss_name).eval()
    heads = model.roi_heads
    logits = torch.randn(5, smoke_val.num_classes + 1)
    regression = torch.zeros(5, 4 * (smoke_val.num_classes + 1))
    proposals = [torch.tensor([[10.0, 10.0, 40.0, 40.0]] * 5)]
    heads.nms_thresh = 1.1  # keep every candidate so the scores can be compared one to one
    boxes, scores, labels = heads.postprocess_detections(logits, regression, proposals, [(96, 96)])
    probs = torch.sigmoid(logits) if use_sigmoid else torch.softmax(logits, -1)
    expected = probs[:, 1:].reshape(-1)  # background column dropped, not multiplied in
    top = expected.sort(descending=True).values[: heads.detections_per_img]
    torch.testing.assert_close(scores[0], top)
    assert int(labels[0].min()) >= 1 and int(labels[0].max()) <= smoke_val.num_classes


def test_detector_outputs_at_most_300_detections_per_image(smoke_val):
    model = _detector(smoke_val, "acsl", xi=0.7).eval()
    images, _ = collate_detection([smoke_val[0]])
    with torch.no_grad():
        (out,) = model(images)
    assert out["boxes"].shape[0] <= 300 and out["boxes"].shape[1] == 4
    assert out["labels"].dtype == torch.int64


@pytest.mark.parametrize("architecture", ["faster_rcnn", "cascade_rcnn"])
@pytest.mark.parametrize("loss_name", ["softmax_ce", "seesaw"])
def test_a_batch_whose_rpn_proposes_nothing_gives_empty_detections(smoke_val, architecture, loss_name):
    """Regression: torchvision decodes zero proposals into a flat [0, 4(C + 1)] tensor, and dropping the
    background column from it used to cost a box coordinate and crash in torch.stack."""
    torch.manual_seed(0)
    loss = build_loss(loss_name, smoke_val.num_classes, smoke_val.frequencies)
    detector = get_profile("smoke").detector
    model = build_detector(replace(detector, architecture=architecture), smoke_val.num_classes, loss).eval()
    propose = model.rpn.forward
    model.rpn.forward = lambda images, features, targets=None: ([p[:0] for p in propose(images, features)[0]], {})
    images, _ = collate_detection([smoke_val[0], smoke_val[1]])
    with torch.no_grad():
        outputs = model(images)
    assert [tuple(o["boxes"].shape) for o in outputs] == [(0, 4), (0, 4)]
    assert all(o["scores"].shape == (0,) and o["labels"].dtype == torch.int64 for o in outputs)
    if architecture == "faster_rcnn":  # the head alone, with no proposal at all
        heads = model.roi_heads
        width = smoke_val.num_classes + 1
        boxes, scores, labels = heads.postprocess_detections(torch.zeros(0, loss.num_logits), torch.zeros(0, 4 * width),
                                                             [torch.zeros(0, 4)] * 2, [(96, 96)] * 2)
        assert [tuple(b.shape) for b in boxes] == [(0, 4), (0, 4)] and [len(s) for s in scores] == [0, 0]


@pytest.mark.parametrize("name", ["resnet18", "resnext101_64x4d", "narrow_resnet", "narrow_resnet_deep", "narrow_resnet_wide"])
def test_backbones_by_name_give_an_fpn(name):
    backbone = build_backbone(name, fpn_channels=256 if name.startswith("res") else 64)
    with torch.no_grad():
        features = backbone(torch.rand(1, 3, 64, 64))
    assert list(features) == ["0", "1", "2", "3", "pool"]


def test_scaled_down_backbones_keep_the_relation_of_the_papers_backbones():
    from acsl.models.backbones import NARROW_RESNETS

    def size(name):
        return sum(p.numel() for p in build_backbone(name, fpn_channels=64).body.parameters())

    # R101 is R50 with a deeper stride-16 stage; X101 64x4d is deeper and wider still.
    assert NARROW_RESNETS["narrow_resnet_deep"][1][2] > NARROW_RESNETS["narrow_resnet"][1][2]
    assert size("narrow_resnet") < size("narrow_resnet_deep") < size("narrow_resnet_wide")
    # The real ones, by layer count of the stride-16 stage: 6 / 23 / 23 bottlenecks.
    from torchvision.models import resnet50, resnet101, resnext101_64x4d

    assert [len(m().layer3) for m in (resnet50, resnet101, resnext101_64x4d)] == [6, 23, 23]


def test_unknown_backbone_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown backbone 'vgg'.*resnet50"):
        build_backbone("vgg")
    assert "resnet50" in BACKBONES


def test_loss_and_detector_class_counts_must_agree(smoke_val):
    loss = build_loss("softmax_ce", 3)
    with pytest.raises(ValueError, match="built for 3 classes"):
        build_detector(get_profile("smoke").detector, smoke_val.num_classes, loss)
