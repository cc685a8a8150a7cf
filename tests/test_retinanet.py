"""acsl's RetinaNet (``acsl.models.retinanet``): torchvision's one-stage detector whose classification subnet a
dense loss trains. Its focal loss equals torchvision's on one image, the anchors' labels follow torchvision's
matching, the bias starts at the loss's prior, detections are labelled 1..C, and a frozen backbone stays as it
was through a training step; a RetinaNet spec names a dense loss, has its own start, and the run store fine-tunes
it from that start."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torchvision.models.detection.retinanet import RetinaNetClassificationHead
from torchvision.ops import box_iou

from acsl.losses.dense import DenseACSL, DenseFocalLoss
from acsl.losses.efl import EqualizedFocalLoss
from acsl.models.retinanet import anchor_labels, build_retinanet
from acsl.profiles import get_profile
from acsl.runs import REPORTED_METRICS, ExperimentSpec, RunStore, method_spec, pretrain_spec

C = 7


def _config(**changes):
    return replace(get_profile("smoke").detector, **{"frozen_backbone": False, "frozen_rpn": False, "frozen_fc6": False,
                                                      **changes})


def _batch(images: int = 1):
    g = torch.Generator().manual_seed(1)
    pictures = [torch.rand(3, 96, 96, generator=g) for _ in range(images)]
    targets = [{"boxes": torch.tensor([[8.0, 10.0, 30.0, 40.0], [40.0, 35.0, 90.0, 80.0], [5.0, 60.0, 20.0, 75.0]])[:i + 2],
                "labels": torch.tensor([3, C, 1])[:i + 2]} for i in range(images)]
    return pictures, targets


def _head_inputs(model, pictures, targets):
    """What ``RetinaNet.forward`` hands ``compute_loss``: resized targets, head outputs and matched indices."""
    image_list, targets = model.transform(pictures, targets)
    features = list(model.backbone(image_list.tensors).values())
    outputs = model.head(features)
    anchors = model.anchor_generator(image_list, features)
    matched = [model.proposal_matcher(box_iou(t["boxes"], a)) for t, a in zip(targets, anchors)]
    return targets, outputs, matched


def test_the_dense_focal_loss_is_torchvisions_retinanet_loss_on_one_image():
    torch.manual_seed(0)
    model = build_retinanet(_config(), C, DenseFocalLoss(C)).train()
    targets, outputs, matched = _head_inputs(model, *_batch(images=1))
    ours = model.head.classification_head.compute_loss(targets, outputs, matched)
    # torchvision's own loss indexes its columns by label: our label k is its column k − 1
    shifted = [{**t, "labels": t["labels"] - 1} for t in targets]
    theirs = RetinaNetClassificationHead.compute_loss(model.head.classification_head, shifted, outputs, matched)
    torch.testing.assert_close(ours, theirs)


def test_over_several_images_the_loss_is_divided_by_the_batchs_foreground_anchors():
    torch.manual_seed(0)
    model = build_retinanet(_config(), C, DenseFocalLoss(C)).train()
    targets, outputs, matched = _head_inputs(model, *_batch(images=2))
    head = model.head.classification_head
    per_image = [head.compute_loss([t], {"cls_logits": outputs["cls_logits"][i:i + 1]}, [m]) * (m >= 0).sum()
                 for i, (t, m) in enumerate(zip(targets, matched))]
    total = sum(int((m >= 0).sum()) for m in matched)
    assert (matched[0] >= 0).sum() != (matched[1] >= 0).sum()  # so per-image and per-batch normalisers differ
    torch.testing.assert_close(head.compute_loss(targets, outputs, matched), sum(per_image) / total)


def test_training_without_the_frozen_box_subnet_changes_no_weight():
    """The fine-tune skips the frozen box subnet (``LongTailRetinaNetHead``): its loss reached no trainable weight,
    so three SGD steps give the same weights to the last bit as with it."""
    config = _config(frozen_backbone=True, frozen_rpn=True, frozen_norm=True)
    trained = []
    for skip in (True, False):
        torch.manual_seed(0)
        model = build_retinanet(config, C, DenseFocalLoss(C)).train()
        if not skip:
            model.head.regression_head.weight_probe = torch.nn.Parameter(torch.zeros(1))  # "trains": the box subnet runs
        optimizer = torch.optim.SGD([p for n, p in model.named_parameters() if p.requires_grad and "probe" not in n],
                                    lr=0.1, momentum=0.9)
        for _ in range(3):
            losses = model(*_batch(images=2))
            assert ("bbox_regression" in losses) != skip
            optimizer.zero_grad()
            sum(losses.values()).backward()
            optimizer.step()
        trained.append({k: v for k, v in model.state_dict().items() if "probe" not in k})
    assert all(torch.equal(trained[0][k], trained[1][k]) for k in trained[0])


def test_anchor_labels_follow_torchvisions_matching():
    matched = torch.tensor([1, -1, -2, 0, 0, -1])  # indices into the ground truth; −1 below, −2 between thresholds
    assert anchor_labels(torch.tensor([5, 2]), matched).tolist() == [2, 0, -1, 5, 5, 0]


@pytest.mark.parametrize("loss, prior", [(DenseFocalLoss(C), 0.01), (EqualizedFocalLoss(C), 0.001),
                                         (DenseACSL(C, ("r",) * 3 + ("f",) * 4), 0.01)])
def test_the_classifier_starts_at_the_losss_prior_and_detections_are_labelled_from_one(loss, prior):
    torch.manual_seed(0)
    model = build_retinanet(_config(), C, loss)
    bias = model.classifiers[0].bias
    assert bias.shape == (3 * C,)  # A = 3 anchors per location (three aspect ratios), C columns each
    torch.testing.assert_close(bias, torch.full_like(bias, -torch.log(torch.tensor((1 - prior) / prior)).item()))
    assert model.classification_loss is loss
    model.eval()
    with torch.no_grad():
        detections = model(_batch(images=2)[0])
    labels = torch.cat([d["labels"] for d in detections])
    assert len(labels) > 0 and labels.min() >= 1 and labels.max() <= C


def test_the_bias_follows_torchvisions_anchor_major_layout(monkeypatch):
    """cls_logits has A·C channels, channel a·C + c for anchor a and class c (torchvision's reshape)."""
    loss = DenseFocalLoss(C)
    monkeypatch.setattr(loss, "initial_bias", lambda: torch.arange(C, dtype=torch.float32))
    model = build_retinanet(_config(), C, loss)
    assert model.classifiers[0].bias.tolist() == list(range(C)) * 3
    features = [torch.zeros(1, model.backbone.out_channels, 4, 4)]
    logits = model.head.classification_head(features)  # [1, 4·4·A, C]: every anchor's row is the bias
    assert torch.equal(logits[0], torch.arange(C, dtype=torch.float32).expand(48, C))


def test_a_fine_tune_trains_the_classification_subnet_alone():
    torch.manual_seed(0)
    # as a fine-tune from a pretrained start builds it (ExperimentSpec.detector_config): frozen backbone, FPN, batch
    # norms and box subnet
    model = build_retinanet(_config(frozen_backbone=True, frozen_rpn=True, frozen_norm=True), C,
                            EqualizedFocalLoss(C)).train()
    assert not any(p.requires_grad for p in model.head.regression_head.parameters())
    box_subnet = {k: v.clone() for k, v in model.head.regression_head.state_dict().items()}
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    subnet = model.head.classification_head.conv[0][0].weight.clone()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    losses = model(*_batch(images=2))
    assert set(losses) == {"classification"} and losses["classification"].isfinite()  # the frozen box subnet idles
    sum(losses.values()).backward()
    optimizer.step()
    assert all(torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())
    assert all(torch.equal(box_subnet[k], v) for k, v in model.head.regression_head.state_dict().items())
    assert not torch.equal(subnet, model.head.classification_head.conv[0][0].weight)
    assert model.classification_loss.pos_grad.sum() > 0  # EFL gathered its first gradient statistics


# ------------------------------------------------------------------------------------------ specs and the run store

def test_a_retinanet_spec_names_a_dense_loss_and_trains_end_to_end():
    retina = (("architecture", "retinanet"),)
    spec = ExperimentSpec(profile="quick", loss="efl", detector=retina)
    assert spec.one_stage and not spec.on_cached_proposals and spec.val_cache_name() is None
    # its own start, trained with the focal loss, on the one-stage schedule (calibrated apart: acsl.profiles)
    assert spec.parent == pretrain_spec("quick", detector=dict(retina))
    assert spec.parent.loss == "dense_focal" and spec.parent.one_stage
    settings = get_profile("quick")
    assert spec.train_config().epochs == (settings.one_stage_fine_tune or settings.stage1).epochs
    assert spec.parent.train_config().epochs == (settings.one_stage_pretrain or settings.pretrain).epochs
    # a Cascade R-CNN still starts from the Faster R-CNN's start
    assert pretrain_spec("quick", detector={"architecture": "cascade_rcnn"}) == pretrain_spec("quick")
    with pytest.raises(ValueError, match="a RetinaNet trains with a one-stage loss"):
        ExperimentSpec(profile="quick", loss="focal", detector=retina)
    with pytest.raises(ValueError, match="needs detector architecture 'retinanet'"):
        ExperimentSpec(profile="quick", loss="efl")
    with pytest.raises(ValueError, match="no decoupled stage 2"):
        ExperimentSpec(profile="quick", loss="dense_acsl", stage=2, detector=retina)
    with pytest.raises(ValueError, match="does not train"):  # no start of its own on the real-data profiles
        ExperimentSpec(profile="lvis-v0.5", loss="efl", detector=retina)
    with pytest.raises(ValueError, match="bad options for loss 'efl'"):
        ExperimentSpec(profile="quick", loss="efl", loss_options=(("xi", 0.7),), detector=retina)
    assert dict(method_spec("quick", "ACSL (RetinaNet)").loss_options) == {"xi": 0.7}
    assert method_spec("quick", "EFL (RetinaNet)").one_stage and not method_spec("quick", "ECM").one_stage


def test_the_run_store_fine_tunes_a_retinanet_from_its_start_and_evaluates_it(tmp_path):
    store = RunStore(tmp_path / "runs", tmp_path / "data", device="cpu", progress=False)
    spec = ExperimentSpec(profile="smoke", loss="dense_acsl", loss_options=(("xi", 0.7),),
                          detector=(("architecture", "retinanet"),), max_iters=3)
    record = store.metrics(spec)
    assert set(REPORTED_METRICS) <= set(record["metrics"]) and record["num_detections"] > 0
    start = torch.load(store.run_dir(spec.parent) / "checkpoint.pt", weights_only=False)["model"]
    tuned = torch.load(store.run_dir(spec) / "checkpoint.pt", weights_only=False)["model"]
    # the fine-tune began from the start: what stays frozen (backbone, FPN, box subnet) is the start's
    for key in ("backbone.pyramid.fpn.layer_blocks.0.0.weight", "head.regression_head.bbox_reg.weight"):
        assert torch.equal(start[key], tuned[key]), key
    assert not torch.equal(start["head.classification_head.conv.0.0.weight"],
                           tuned["head.classification_head.conv.0.0.weight"])
    assert tuned["head.classification_head.cls_logits.weight"].shape[0] == 3 * get_profile("smoke").data.num_categories
