"""The fast decoupled stage 2: cached box-head features equal what the frozen detector computes for
the sampled RoIs, and training on them changes the classifier only."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from acsl.data import collate_detection
from acsl.engine import TrainConfig, load_checkpoint
from acsl.engine.roi_cache import build_roi_cache, train_classifier_on_cache
from acsl.runs import ExperimentSpec
from acsl.losses import build_loss
from acsl.models import build_detector
from acsl.models.sampling import mix_seed
from acsl.profiles import get_profile


def _detector(dataset, architecture="faster_rcnn"):
    torch.manual_seed(0)
    loss = build_loss("acsl", dataset.num_classes, dataset.frequencies, xi=0.7)
    return build_detector(replace(get_profile("smoke").detector, architecture=architecture), dataset.num_classes, loss)


def _rpn_outputs(model, dataset, index, flip):
    """(FPN maps, training proposals, resized targets, image sizes) of (image, flip) under the frozen detector."""
    images, targets = collate_detection([dataset.get(index, flip)])
    image_list, targets = model.transform(images, targets)
    features = model.backbone(image_list.tensors)
    proposals, _ = model.rpn(image_list, features, targets)
    return features, proposals, targets, image_list.image_sizes


def _train_mode_frozen(model):
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    return model


@pytest.fixture(scope="module")
def cache(smoke_train, tmp_path_factory):
    return build_roi_cache(_detector(smoke_train), smoke_train, tmp_path_factory.mktemp("c") / "roi_cache",
                           seed=0, device="cpu", batch_size=6, progress=False)


def test_cached_features_are_the_box_head_features_of_the_sampled_rois(smoke_train, cache):
    assert cache.features.dtype == np.float16 and isinstance(cache.features, np.memmap)
    assert cache.offsets.shape == (len(smoke_train), 2, 1, 2) and cache.heads == 1
    model = _train_mode_frozen(_detector(smoke_train))
    index, flip = 5, True
    with torch.no_grad(), model.sampling_keys([mix_seed(0, index, int(flip))]):
        features, proposals, targets, sizes = _rpn_outputs(model, smoke_train, index, flip)
        proposals, _, labels, _ = model.roi_heads.select_training_samples(proposals, targets)
        expected = model.roi_heads.box_head(model.roi_heads.box_roi_pool(features, proposals, sizes))
    rows = cache.rows(index, flip)
    assert len(rows) == len(labels[0]) == get_profile("smoke").detector.rois_per_image
    torch.testing.assert_close(torch.from_numpy(np.asarray(cache.features[rows], dtype=np.float32)), expected,
                               rtol=2e-3, atol=2e-3)  # float16
    assert torch.equal(torch.from_numpy(cache.labels[rows]), labels[0])
    # The flipped and unflipped samples are different rows.
    assert not np.array_equal(cache.rows(index, False), rows)


def test_a_complete_cache_is_reused_and_an_interrupted_one_is_not(smoke_train, cache, monkeypatch):
    reopened = build_roi_cache(_detector(smoke_train), smoke_train, cache.root, seed=0, device="cpu", progress=False)
    assert np.array_equal(reopened.labels, cache.labels)
    broken = cache.root.with_name("broken")
    calls = []

    def fail(index, flip=None):
        calls.append(index)
        raise OSError("disk gone")

    monkeypatch.setattr(smoke_train, "get", fail)
    with pytest.raises(OSError, match="disk gone"):
        build_roi_cache(_detector(smoke_train), smoke_train, broken, seed=0, device="cpu", progress=False)
    assert calls and not broken.exists()  # only the .partial directory, never something that looks complete


def test_training_on_the_cache_changes_the_classifier_only(smoke_train, cache, tmp_path):
    model = _detector(smoke_train)
    before = {k: v.clone() for k, v in model.state_dict().items() if torch.is_tensor(v) and v.is_floating_point()}
    config = TrainConfig(epochs=2, batch_size=4, lr=0.02, warmup_iters=2, lr_steps=(), log_every=1)
    checkpoint = train_classifier_on_cache(model, cache, smoke_train, config, tmp_path, seed=0, device="cpu",
                                           progress=False)
    state = load_checkpoint(checkpoint)
    assert state["epoch"] == 2 and state["stage"] == 2
    changed = {k for k, v in before.items() if not torch.equal(v, state["model"][k])}
    assert changed == {"roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.cls_score.bias"}
    losses = [line for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(losses) == 2 * len(smoke_train) // 4


def test_a_cascade_cache_holds_each_heads_rows_as_the_exact_stage2_draws_them(smoke_train, tmp_path):
    """Rows of heads 1–3 equal the box-head outputs (and labels) an exact training forward of Cascade R-CNN
    computes under the same sampling key: head t's RoIs are drawn among head t − 1's refined boxes."""
    cache = build_roi_cache(_detector(smoke_train, "cascade_rcnn"), smoke_train, tmp_path / "c", seed=0, device="cpu",
                            batch_size=6, progress=False)
    assert cache.heads == 3 and cache.offsets.shape == (len(smoke_train), 2, 3, 2)
    model = _train_mode_frozen(_detector(smoke_train, "cascade_rcnn"))
    seen, labels_seen = [], []
    for stage in model.roi_heads.stages:
        stage.box_head.register_forward_hook(lambda _m, _i, out: seen.append(out.detach()))
    loss = model.roi_heads.classification_loss
    original = loss.forward
    loss.forward = lambda logits, labels, *a, **k: (labels_seen.append(labels), original(logits, labels, *a, **k))[1]
    index, flip = 3, True
    with torch.no_grad(), model.sampling_keys([mix_seed(0, index, int(flip))]):
        features, proposals, targets, sizes = _rpn_outputs(model, smoke_train, index, flip)
        model.roi_heads(features, proposals, sizes, targets)
    assert len(seen) == len(labels_seen) == 3
    for head, (expected, labels) in enumerate(zip(seen, labels_seen)):
        rows = cache.rows(index, flip, head)
        torch.testing.assert_close(torch.from_numpy(np.asarray(cache.features[rows], dtype=np.float32)), expected,
                                   rtol=2e-3, atol=2e-3)  # float16
        assert torch.equal(torch.from_numpy(cache.labels[rows]), labels)
    assert not np.array_equal(cache.labels[cache.rows(index, flip, 0)], cache.labels[cache.rows(index, flip, 2)])


def test_cascade_training_on_the_cache_changes_the_three_classifiers_only(smoke_train, tmp_path):
    cache = build_roi_cache(_detector(smoke_train, "cascade_rcnn"), smoke_train, tmp_path / "c", seed=0, device="cpu",
                            batch_size=6, progress=False)
    model = _detector(smoke_train, "cascade_rcnn")
    before = {k: v.clone() for k, v in model.state_dict().items() if torch.is_tensor(v) and v.is_floating_point()}
    config = TrainConfig(epochs=1, batch_size=4, lr=0.02, warmup_iters=2, lr_steps=(), log_every=1)
    state = load_checkpoint(train_classifier_on_cache(model, cache, smoke_train, config, tmp_path / "run", seed=0,
                                                      device="cpu", progress=False))
    changed = {k for k, v in before.items() if not torch.equal(v, state["model"][k])}
    assert changed == {f"roi_heads.stages.{t}.box_predictor.cls_score.{p}" for t in range(3) for p in ("weight", "bias")}
    # A cache of another detector's heads is refused, not silently misread.
    with pytest.raises(ValueError, match="rows of 3 box head.*detector 1"):
        train_classifier_on_cache(_detector(smoke_train), cache, smoke_train, config, tmp_path / "other", device="cpu",
                                  progress=False)


def test_the_cascade_cache_loss_is_the_weighted_sum_over_the_heads(smoke_train, tmp_path):
    from acsl.data.samplers import UniformSampler
    from acsl.engine.roi_cache import CachedClassifierStep

    cache = build_roi_cache(_detector(smoke_train, "cascade_rcnn"), smoke_train, tmp_path / "c", seed=0, device="cpu",
                            batch_size=6, progress=False)
    model = _detector(smoke_train, "cascade_rcnn")
    step = CachedClassifierStep(model, cache, smoke_train, UniformSampler(len(smoke_train), 0), 4, torch.device("cpu"))
    rows_per_head, _ = step.batches(0)[0]
    expected = 0.0
    for classifier, weight, rows in zip(model.roi_heads.classifiers, (1.0, 0.5, 0.25), rows_per_head):
        features = torch.from_numpy(np.asarray(cache.features[rows], dtype=np.float32))
        expected = expected + weight * model.roi_heads.classification_loss(classifier(features), torch.from_numpy(cache.labels[rows]))
    torch.testing.assert_close(step.run(step.batches(0)[0]).loss, expected)


def test_a_cached_stage1_is_refused(smoke_train, tmp_path):
    with pytest.raises(ValueError, match="needs stage=2"):
        ExperimentSpec(profile="smoke", cached=True)
