"""Evaluating a cached stage 2 from the parent's cached val box-head features (``acsl.engine.val_cache``)
gives what the whole frozen detector gives with the same classifier: the same detections and metrics, for
sigmoid and softmax scoring and on the Open Images track; the cache is built once per parent and never
reused for another detector."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from acsl.engine import load_checkpoint, predict
from acsl.engine.val_cache import (VAL_CACHE_NAME, VAL_FC6_CACHE_NAME, ValFeatureCache, build_val_feature_cache,
                                   estimate_val_cache_bytes, predict_cached_stage2, predict_from_val_cache)
from acsl.losses import build_loss
from acsl.models import build_detector
from acsl.models.classifiers import apply_stage2_classifier
from acsl.profiles import get_profile
from acsl.runs import RunStore, baseline_spec, decoupled_spec
from acsl.runs.datasets import evaluation_truth
from acsl.runs.store import build_model, score_detections


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("val-cache")
    return RunStore(root / "runs", data_root=root / "data", device="cpu", progress=False)


def _stored_model(store, spec):
    train_set, _, _ = store.datasets(spec)
    model = build_model(spec, train_set)
    apply_stage2_classifier(model, spec.classifier)
    model.load_state_dict(load_checkpoint(store.run_dir(spec) / "checkpoint.pt")["model"])
    return model


def _assert_same_detections(fast: list[dict], exact: list[dict]) -> None:
    assert len(fast) == len(exact) > 0
    assert [(d["image_id"], d["category_id"]) for d in fast] == [(d["image_id"], d["category_id"]) for d in exact]
    np.testing.assert_allclose([d["bbox"] for d in fast], [d["bbox"] for d in exact], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose([d["score"] for d in fast], [d["score"] for d in exact], rtol=1e-5, atol=1e-6)


def _assert_same_metrics(ours: dict, theirs: dict) -> None:
    assert set(ours) == set(theirs)
    for name, value in ours.items():
        assert (math.isnan(value) and math.isnan(theirs[name])) or value == pytest.approx(theirs[name], abs=1e-9), name


@pytest.mark.parametrize("profile,loss,options,sigmoid", [
    ("smoke", "acsl", {"xi": 0.7}, True),
    ("smoke", "softmax_ce", {}, False),
    ("oi-smoke", "acsl", {"xi": 0.7}, True),  # multi-label scores over the class hierarchy
])
def test_the_cached_evaluation_equals_the_whole_frozen_detector(store, profile, loss, options, sigmoid):
    spec = decoupled_spec(profile, loss, cached=True, **options)
    record = store.metrics(spec)
    assert (store.run_dir(spec.parent) / VAL_CACHE_NAME / "meta.json").is_file()
    assert record["timing"]["eval_s"] > 0 and "val_cache_s" in record["timing"]
    model = _stored_model(store, spec)
    assert model.classification_loss.use_sigmoid is sigmoid
    _, val_set, val_json = store.datasets(spec)
    exact = predict(model, val_set, spec.settings.eval_batch_size, "cpu", progress=False)
    cache = ValFeatureCache.open(store.run_dir(spec.parent) / VAL_CACHE_NAME)
    _assert_same_detections(predict_from_val_cache(model, cache, val_set, "cpu", progress=False), exact)
    assert record["num_detections"] == len(exact)
    metrics, _ = score_detections(spec, evaluation_truth(val_set, val_json), exact)
    _assert_same_metrics(record["metrics"], metrics)


def test_the_val_cache_is_built_once_per_parent(store, monkeypatch):
    first = store.metrics(decoupled_spec("smoke", "acsl", cached=True, xi=0.7))
    meta = store.run_dir(decoupled_spec("smoke", "acsl", xi=0.7).parent) / VAL_CACHE_NAME / "meta.json"
    written = meta.stat().st_mtime_ns
    monkeypatch.setattr("acsl.engine.val_cache._write_cache", lambda *a, **k: pytest.fail("rebuilt the val cache"))
    monkeypatch.setattr("acsl.runs.store.predict", lambda *a, **k: pytest.fail("ran the whole detector"))
    spec = decoupled_spec("smoke", "acsl", cached=True, xi=0.1)
    second = store.metrics(spec)
    assert meta.stat().st_mtime_ns == written
    assert second["num_detections"] > 0 and first["num_detections"] > 0
    monkeypatch.undo()
    _, val_set, _ = store.datasets(spec)
    model = _stored_model(store, spec)
    cache = ValFeatureCache.open(meta.parent)
    _assert_same_detections(predict_from_val_cache(model, cache, val_set, "cpu", progress=False),
                            predict(model, val_set, spec.settings.eval_batch_size, "cpu", progress=False))


def test_a_stage1_fine_tune_is_evaluated_from_its_starts_fc6_cache_with_the_whole_detectors_detections(store, monkeypatch):
    spec = baseline_spec("smoke")  # backbone, RPN and the box head's first layer: its start's, frozen
    assert spec.val_cache_name() == VAL_FC6_CACHE_NAME
    record = store.metrics(spec)
    meta = store.run_dir(spec.parent) / VAL_FC6_CACHE_NAME / "meta.json"
    assert meta.is_file() and "val_cache_s" in record["timing"]
    model = _stored_model(store, spec)
    _, val_set, val_json = store.datasets(spec)
    exact = predict(model, val_set, spec.settings.eval_batch_size, "cpu", progress=False)
    cache = ValFeatureCache.open(meta.parent)
    assert cache.after_fc6 and predict_from_val_cache(model, cache, val_set, "cpu", progress=False) == exact  # bit for bit
    metrics, _ = score_detections(spec, evaluation_truth(val_set, val_json), exact)
    _assert_same_metrics(record["metrics"], metrics)
    # another fine-tune of the same start reads the same cache, and never runs the whole detector
    written = meta.stat().st_mtime_ns
    monkeypatch.setattr("acsl.engine.val_cache._write_cache", lambda *a, **k: pytest.fail("rebuilt the val cache"))
    monkeypatch.setattr("acsl.runs.store.predict", lambda *a, **k: pytest.fail("ran the whole detector"))
    longer = baseline_spec("smoke", schedule=2)
    assert longer.parent == spec.parent and store.metrics(longer)["num_detections"] > 0
    assert meta.stat().st_mtime_ns == written
    # which runs have such a cache: not Cascade R-CNN, not a start-less profile, not the exact stage 2
    assert baseline_spec("smoke", detector={"architecture": "cascade_rcnn"}).val_cache_name() is None
    assert baseline_spec("lvis-v0.5").val_cache_name() is None
    assert decoupled_spec("smoke", "acsl", xi=0.7).val_cache_name() is None
    assert decoupled_spec("smoke", "acsl", xi=0.7, cached=True).val_cache_name() == VAL_CACHE_NAME


def _detector(dataset, architecture="faster_rcnn"):
    torch.manual_seed(0)
    loss = build_loss("acsl", dataset.num_classes, dataset.frequencies, xi=0.7)
    return build_detector(replace(get_profile("smoke").detector, architecture=architecture), dataset.num_classes, loss)


def test_a_cache_of_other_weights_is_rebuilt_and_a_killed_build_leaves_none(smoke_val, tmp_path, monkeypatch):
    model = _detector(smoke_val)
    cache_dir = tmp_path / "parent" / VAL_CACHE_NAME
    first = build_val_feature_cache(model, smoke_val, cache_dir, batch_size=6, device="cpu", progress=False)
    assert first.features.dtype == np.float32 and len(first.image_ids) == len(smoke_val)
    measured = sum(p.stat().st_size for p in cache_dir.iterdir() if p.name != "meta.json")
    assert measured <= estimate_val_cache_bytes(model, len(smoke_val))  # the RPN's top-n bounds the rows
    with torch.no_grad():
        next(model.backbone.parameters()).mul_(1.5)  # another stage-1 detector
    rebuilt = build_val_feature_cache(model, smoke_val, cache_dir, batch_size=6, device="cpu", progress=False)
    assert not np.array_equal(np.asarray(rebuilt.features), np.asarray(first.features))
    _assert_same_detections(predict_from_val_cache(model, rebuilt, smoke_val, "cpu", progress=False),
                            predict(model, smoke_val, 6, "cpu", progress=False))
    other_batch = build_val_feature_cache(model, smoke_val, cache_dir, batch_size=4, device="cpu", progress=False)
    assert other_batch.batch_size == 4  # features depend on the batch's padding: rebuilt in predict's batches

    def fail(index, flip=None):
        raise OSError("disk gone")

    killed = tmp_path / "killed" / VAL_CACHE_NAME
    monkeypatch.setattr(smoke_val, "get", fail)
    with pytest.raises(OSError, match="disk gone"):
        build_val_feature_cache(model, smoke_val, killed, batch_size=6, device="cpu", progress=False)
    assert list(killed.parent.iterdir()) == []  # neither a cache nor a temporary


def test_a_val_cache_too_large_falls_back_to_the_whole_detector(smoke_val, tmp_path):
    model = _detector(smoke_val)
    with pytest.warns(RuntimeWarning, match="val feature cache would take .* above the limit.*whole detector"):
        detections, cache_s = predict_cached_stage2(model, smoke_val, tmp_path / VAL_CACHE_NAME, 6, "cpu",
                                                    progress=False, limit_gb=1e-9)
    assert cache_s == 0.0 and not (tmp_path / VAL_CACHE_NAME).exists()
    _assert_same_detections(detections, predict(model, smoke_val, 6, "cpu", progress=False))


def test_cascade_rcnn_is_refused(smoke_val, tmp_path):
    with pytest.raises(ValueError, match="Faster R-CNN only"):
        build_val_feature_cache(_detector(smoke_val, "cascade_rcnn"), smoke_val, tmp_path / "c", device="cpu")
