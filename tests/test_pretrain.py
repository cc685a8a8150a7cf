"""The pretrained start of the synthetic profiles (docs/ARCHITECTURE.md, "The pretrained start"): a stage-0
run on shape labels that every stage-1 run loads, with a fresh classifier."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torchvision.ops import FrozenBatchNorm2d

from acsl.data.coarse import CoarseLabels, coarse_class
from acsl.data.synthetic import SHAPES
from acsl.engine import load_checkpoint
from acsl.profiles import get_profile, openimages_counterpart
from acsl.runs import ExperimentSpec, RunStore, baseline_spec, build_model, decoupled_spec, pretrain_spec


def test_every_stage1_run_of_a_synthetic_profile_starts_from_its_shared_pretrained_start():
    start = pretrain_spec("smoke", seed=1)
    assert start.stage == 0 and start.parent is None
    assert baseline_spec("smoke", seed=1).parent == start
    assert baseline_spec("smoke", schedule=2, seed=1).parent == start
    assert ExperimentSpec("smoke", loss="eql", seed=1).parent == start
    assert ExperimentSpec("oi-smoke", loss="bce", seed=1).parent == start  # the Open Images track shares it
    # a larger backbone has its own start; Cascade R-CNN loads its Faster R-CNN start's backbone
    deep = {"backbone": "narrow_resnet_deep"}
    assert baseline_spec("smoke", detector=deep).parent == pretrain_spec("smoke", detector=deep)
    assert baseline_spec("smoke", detector={"architecture": "cascade_rcnn", **deep}).parent == pretrain_spec("smoke", detector=deep)
    # stage 2 starts from stage 1, whose hash carries the start's
    assert decoupled_spec("smoke", "acsl", xi=0.7).parent.parent == pretrain_spec("smoke")
    # the real-data profiles start from torchvision's COCO-trained detector instead
    assert baseline_spec("lvis-v0.5").parent is None


def test_the_long_fine_tune_profile_shares_quicks_starts_and_only_lengthens_the_fine_tunes():
    """``quick-long`` (docs/ARCHITECTURE.md, "How converged the 1x is"): quick's benchmark, detector and
    pretrained starts, a 16-epoch 1x and stage 2 with the lr step at the last sixth; its own stage-1 runs."""
    quick, long = get_profile("quick"), get_profile("quick-long")
    assert (long.stage1.epochs, long.stage1.lr_steps, long.stage2.epochs, long.stage2.lr_steps) == (16, (14,), 16, (14,))
    assert replace(long.stage1, epochs=6, lr_steps=(5,)) == quick.stage1
    assert (long.data, long.detector, long.pretrain, long.report_seeds) == (quick.data, quick.detector, quick.pretrain,
                                                                           quick.report_seeds)
    assert "1x = 16 epochs of fine-tuning (lr 0.04, ×0.1 at 14)" in long.model_note
    for seed in (0, 2):
        assert pretrain_spec("quick-long", seed=seed) == pretrain_spec("quick", seed=seed)
        assert baseline_spec("quick-long", seed=seed).parent == pretrain_spec("quick", seed=seed)
        assert baseline_spec("quick-long", seed=seed).hash != baseline_spec("quick", seed=seed).hash
    # the Open Images track at the same schedule, on the same starts
    counterpart = openimages_counterpart("quick-long")
    assert counterpart == "oi-quick-long" and get_profile(counterpart).stage1 == long.stage1
    assert ExperimentSpec(counterpart, loss="bce", seed=1).parent == pretrain_spec("quick", seed=1)


def test_the_pretrained_start_is_refused_where_it_does_not_apply():
    with pytest.raises(ValueError, match="no pretraining stage"):
        ExperimentSpec("lvis-v0.5", stage=0)
    with pytest.raises(ValueError, match="softmax CE"):
        ExperimentSpec("smoke", loss="acsl", stage=0)
    with pytest.raises(ValueError, match="Faster R-CNN"):
        ExperimentSpec("smoke", stage=0, detector=(("architecture", "cascade_rcnn"),))


def test_coarse_labels_keep_the_frequent_categories_and_pool_the_rest_by_shape(smoke_train):
    coarse = CoarseLabels(smoke_train)
    categories = {c["id"]: c for c in smoke_train.categories}
    frequent = [c["name"] for c in categories.values() if c["frequency"] == "f"]
    shapes = {c["shape"] for c in categories.values() if c["frequency"] != "f"}
    assert sorted(coarse.coarse_names) == sorted(frequent + [f"other {shape}" for shape in shapes])
    assert coarse.num_classes < smoke_train.num_classes and all(s in SHAPES for s in shapes)
    for index in range(4):
        _, fine = smoke_train.get(index, flip=False)
        image, target = coarse.get(index, flip=False)
        assert torch.equal(target["boxes"], fine["boxes"])
        expected = [coarse.coarse_names.index(coarse_class(categories[smoke_train.label_to_category_id[label - 1]])) + 1
                    for label in fine["labels"].tolist()]
        assert target["labels"].tolist() == expected
    assert sum(coarse.instance_counts) == sum(smoke_train.instance_counts)
    assert coarse.frequencies == ["f"] * coarse.num_classes
    assert coarse_class({"name": "red_star_plain", "frequency": "f", "shape": "star"}) == "red_star_plain"
    assert coarse_class({"name": "red_star_dotted", "frequency": "r", "shape": "star"}) == "other star"


def test_a_stage1_run_loads_the_pretrained_start_with_a_fresh_classifier(tmp_path, smoke_bench):
    store = RunStore(tmp_path / "runs", data_root=tmp_path / "data", progress=False)
    spec = baseline_spec("smoke", seed=0)
    start = store.checkpoint(spec.parent)
    pretrained = load_checkpoint(start)["model"]
    assert pretrained["roi_heads.box_predictor.cls_score.weight"].shape[0] == CoarseLabels(store.datasets(spec.parent)[0].dataset).num_classes + 1
    assert store.timing(spec.parent)["train_s"] > 0

    train_set = store.datasets(spec)[0]
    model = store._initial_model(spec, train_set)
    state = model.state_dict()
    for key in ("backbone.body.stem.0.weight", "backbone.body.layer3.0.conv1.weight", "backbone.fpn.inner_blocks.0.0.weight",
                "rpn.head.conv.0.0.weight", "roi_heads.box_head.fc6.weight", "backbone.body.layer2.0.bn1.running_var"):
        assert torch.equal(state[key], pretrained[key]), key
    # the classifier and the class-specific regressor start fresh: C + 1 outputs, the seed's initialisation
    fresh = build_model(spec, train_set).state_dict()
    assert state["roi_heads.box_predictor.cls_score.weight"].shape[0] == train_set.num_classes + 1
    for key in ("roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.bbox_pred.weight"):
        assert torch.equal(state[key], fresh[key]), key
    assert not torch.equal(state["roi_heads.box_head.fc6.weight"], fresh["roi_heads.box_head.fc6.weight"])
    # a fine-tune: frozen batch norms; the backbone, FPN and RPN as pretrained, the RoI heads train
    assert any(isinstance(m, FrozenBatchNorm2d) for m in model.backbone.modules())
    assert not any(p.requires_grad for p in (*model.backbone.parameters(), *model.rpn.parameters()))
    assert all(p.requires_grad for p in model.roi_heads.parameters())
    assert spec.on_cached_proposals

    record = store.metrics(spec)  # and it trains and evaluates from there
    assert record["num_detections"] > 0
