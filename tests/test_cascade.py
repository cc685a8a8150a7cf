"""Cascade R-CNN (Cai & Vasconcelos): three heads at IoU 0.5/0.6/0.7 with the long-tail loss on each,
losses weighted 1/0.5/0.25, test scores the mean of the three heads', stage 2 training all three
classifiers."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from acsl.data import collate_detection
from acsl.engine import TrainConfig, load_checkpoint, train
from acsl.losses import build_loss
from acsl.models import build_detector
from acsl.models.cascade import CASCADE_IOUS, CASCADE_LOSS_WEIGHTS, CASCADE_REG_WEIGHTS, CascadeRoIHeads
from acsl.profiles import get_profile
from conftest import train_steps


def _cascade(dataset, loss_name="acsl", **options):
    torch.manual_seed(0)
    loss = build_loss(loss_name, dataset.num_classes, dataset.frequencies, **options)
    config = replace(get_profile("smoke").detector, architecture="cascade_rcnn")
    return build_detector(config, dataset.num_classes, loss)


def test_the_three_stages_follow_cai_and_vasconcelos(smoke_train):
    heads = _cascade(smoke_train, xi=0.7).roi_heads
    assert isinstance(heads, CascadeRoIHeads) and len(heads.stages) == 3
    assert CASCADE_IOUS == (0.5, 0.6, 0.7) and heads.loss_weights == CASCADE_LOSS_WEIGHTS == (1.0, 0.5, 0.25)
    for stage, iou, weights in zip(heads.stages, CASCADE_IOUS, CASCADE_REG_WEIGHTS):
        assert stage.proposal_matcher.high_threshold == iou == stage.proposal_matcher.low_threshold
        assert stage.box_coder.weights == weights
        assert stage.box_predictor.bbox_pred.out_features == 4  # class-agnostic
    assert weights == (30.0, 30.0, 15.0, 15.0)
    # The same ACSL module scores every head.
    assert heads.classification_loss.xi == 0.7


def test_cascade_trains_a_few_steps_with_acsl(smoke_train):
    model = _cascade(smoke_train, xi=0.7).train()
    images, targets = collate_detection([smoke_train[i] for i in range(4)])
    history = train_steps(model, images, targets, steps=15)
    assert sum(history[-4:]) / 4 < 0.85 * sum(history[:4]) / 4, history
    for stage in model.roi_heads.stages:  # every head received gradient
        assert stage.box_predictor.cls_score.weight.grad.abs().sum() > 0


def test_cascade_training_loss_is_the_weighted_sum_of_the_stage_losses(smoke_train):
    model = _cascade(smoke_train, "softmax_ce").train()
    images, targets = collate_detection([smoke_train[i] for i in range(2)])
    seen = []
    original = model.roi_heads.classification_loss.forward

    def spy(logits, labels):
        value = original(logits, labels)
        seen.append(value.detach())
        return value

    model.roi_heads.classification_loss.forward = spy
    losses = model(images, targets)
    assert len(seen) == 3
    expected = sum(w * v for w, v in zip(CASCADE_LOSS_WEIGHTS, seen))
    torch.testing.assert_close(losses["loss_classifier"].detach(), expected)


def test_cascade_test_scores_are_the_mean_of_the_three_heads(smoke_val):
    model = _cascade(smoke_val, "bce").eval()
    heads = model.roi_heads
    heads.nms_thresh = 1.1
    images, _ = collate_detection([smoke_val[0]])
    per_stage = []
    for stage in heads.stages:
        stage.box_predictor.register_forward_hook(lambda module, args, out: per_stage.append(out[0].detach()))
    with torch.no_grad():
        (detections,) = model(images)
    assert len(per_stage) == 3
    mean = torch.stack([torch.sigmoid(logits)[:, 1:] for logits in per_stage]).mean(0).reshape(-1)
    top = mean[mean > heads.score_thresh].sort(descending=True).values[: len(detections["scores"])]
    torch.testing.assert_close(detections["scores"], top, rtol=1e-5, atol=1e-6)
    # ... and differ from any single head's scores.
    first = torch.sigmoid(per_stage[0])[:, 1:].reshape(-1).sort(descending=True).values[: len(top)]
    assert not torch.allclose(first, top)


def test_stage2_fine_tunes_the_three_classifiers_only(smoke_train, tmp_path):
    model = _cascade(smoke_train, xi=0.7)
    before = {k: v.clone() for k, v in model.state_dict().items() if torch.is_tensor(v) and v.is_floating_point()}
    config = TrainConfig(epochs=1, batch_size=4, lr=0.02, warmup_iters=2, lr_steps=(), log_every=1)
    checkpoint = train(model, smoke_train, config, tmp_path, stage=2, seed=0, device="cpu", progress=False)
    after = load_checkpoint(checkpoint)["model"]
    changed = {k for k, v in before.items() if not torch.equal(v, after[k])}
    assert changed == {f"roi_heads.stages.{i}.box_predictor.cls_score.{p}" for i in range(3) for p in ("weight", "bias")}


def test_unknown_architecture_is_refused(smoke_train):
    loss = build_loss("softmax_ce", smoke_train.num_classes)
    with pytest.raises(ValueError, match="unknown detector architecture 'yolo'.*cascade_rcnn"):
        build_detector(replace(get_profile("smoke").detector, architecture="yolo"), smoke_train.num_classes, loss)
