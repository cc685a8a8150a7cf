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


def test_quick_shares_one_benchmark_and_one_pretrained_start_across_its_seeds():
    """docs/ARCHITECTURE.md, "Seeds and intervals": on ``quick`` every seed trains on the one benchmark and from
    the one pretrained start of ``benchmark_seed``, so a seed replicates the fine-tune alone (as the paper's
    detectors are all trained on one LVIS from one COCO model); the Open Images track shares the start too."""
    quick = get_profile("quick")
    assert quick.benchmark_seed == 0 and quick.report_seeds == (0, 1, 2)
    starts = {baseline_spec("quick", seed=seed).parent for seed in quick.report_seeds}
    assert starts == {pretrain_spec("quick", seed=0)} == {pretrain_spec("quick", seed=5)}
    assert {baseline_spec("quick", seed=seed).data_config() for seed in (0, 1, 2)} == {replace(quick.data, seed=0)}
    assert len({baseline_spec("quick", seed=seed).hash for seed in (0, 1, 2)}) == 3  # each seed its own fine-tune
    assert decoupled_spec("quick", "acsl", seed=2, xi=0.7).parent == baseline_spec("quick", seed=2)
    assert ExperimentSpec("oi-quick", loss="bce", seed=1).parent == pretrain_spec("quick", seed=0)
    # smoke keeps a benchmark and a start per seed
    assert get_profile("smoke").benchmark_seed is None
    assert baseline_spec("smoke", seed=1).data_config().seed == 1 and pretrain_spec("smoke", seed=1).seed == 1


def test_the_tuning_profile_is_quick_on_a_draw_no_report_uses():
    """``quick-tuning`` (docs/ARCHITECTURE.md, "Calibrating the benchmark"): quick's data settings, detector and
    schedules on the benchmark and start of seed 3, which is no report seed."""
    quick, tuning = get_profile("quick"), get_profile("quick-tuning")
    assert (tuning.data, tuning.detector, tuning.stage1, tuning.stage2, tuning.pretrain) == (
        quick.data, quick.detector, quick.stage1, quick.stage2, quick.pretrain)
    assert tuning.benchmark_seed == 3 and tuning.benchmark_seed not in quick.report_seeds
    assert baseline_spec("quick-tuning", seed=3).data_config().seed == 3
    assert baseline_spec("quick-tuning", seed=3).parent == pretrain_spec("quick-tuning", seed=3) != pretrain_spec("quick")


def test_a_benchmark_of_another_version_never_returns_an_old_run(monkeypatch, tmp_path):
    """The benchmark's content version enters every synthetic spec's hash and its data folder, so runs and data
    stored for another version are never returned for this one."""
    import acsl.runs.datasets as datasets_module
    import acsl.runs.spec as spec_module

    store = RunStore(tmp_path / "runs", tmp_path / "data", device="cpu", progress=False)
    spec = baseline_spec("quick", seed=1)
    old_dir, old_folder = store.run_dir(spec), datasets_module.benchmark_folder("quick", 0)
    old_start = spec.parent.hash
    old_dir.mkdir(parents=True)
    (old_dir / "metrics.json").write_text('{"metrics": {"AP": 1.0}}')
    assert store.is_done(spec)
    assert spec.resolved()["data"]["content_version"] == spec_module.SYNTHETIC_CONTENT_VERSION

    monkeypatch.setattr(spec_module, "SYNTHETIC_CONTENT_VERSION", "acsl-synthetic-999")
    monkeypatch.setattr(datasets_module, "CONTENT_VERSION", "acsl-synthetic-999")
    new = baseline_spec("quick", seed=1)
    assert new.hash != spec.hash and new.parent.hash != old_start
    assert store.run_dir(new) != old_dir and not store.is_done(new)
    assert datasets_module.benchmark_folder("quick", 0) == "synthetic-quick-seed0-v999" != old_folder


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
    # the box head's first layer stays as pretrained too (DetectorConfig.frozen_fc6); its second layer and the predictor train
    fc6 = {f"box_head.fc6.{name}" for name in ("weight", "bias")}
    assert all(p.requires_grad != (name in fc6) for name, p in model.roi_heads.named_parameters())
    assert spec.on_cached_proposals

    record = store.metrics(spec)  # and it trains and evaluates from there
    assert record["num_detections"] > 0


def test_a_cascade_starts_each_box_head_from_the_pretrained_box_head(tmp_path, smoke_bench):
    """Cascade R-CNN's three box heads start from its Faster R-CNN start's two-FC box head (their first layer then
    stays frozen, as Faster R-CNN's does), and its three predictors fresh."""
    store = RunStore(tmp_path / "runs", data_root=tmp_path / "data", progress=False)
    spec = baseline_spec("smoke", seed=0, detector={"architecture": "cascade_rcnn"})
    pretrained = load_checkpoint(store.checkpoint(spec.parent))["model"]
    train_set = store.datasets(spec)[0]
    model = store._initial_model(spec, train_set)
    state, fresh = model.state_dict(), build_model(spec, train_set).state_dict()
    for t in range(3):
        for layer in ("fc6.weight", "fc6.bias", "fc7.weight", "fc7.bias"):
            assert torch.equal(state[f"roi_heads.stages.{t}.box_head.{layer}"], pretrained[f"roi_heads.box_head.{layer}"])
        for key in ("cls_score.weight", "bbox_pred.weight"):
            assert torch.equal(state[f"roi_heads.stages.{t}.box_predictor.{key}"], fresh[f"roi_heads.stages.{t}.box_predictor.{key}"])
        assert not model.roi_heads.stages[t].box_head.fc6.weight.requires_grad
    assert torch.equal(state["rpn.head.conv.0.0.weight"], pretrained["rpn.head.conv.0.0.weight"])
