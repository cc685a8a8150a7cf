"""Image samplers (repeat-factor sampling, class-aware sampling) and the stage-2 classifier recipes
(cRT's re-initialised classifier, LWS's learned scales)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from acsl.data.samplers import (ClassBalancedSampler, RepeatFactorSampler, UniformSampler, build_sampler, occurrences,
                                repeat_factors)
from acsl.engine import TrainConfig, load_checkpoint, load_stage1_weights, train
from acsl.engine.loader import visit_flip, visit_key
from acsl.layers import ScaledClassifier
from acsl.losses import build_loss
from acsl.models import build_detector
from acsl.models.classifiers import apply_stage2_classifier
from acsl.profiles import get_profile

# Ten images; class 1 in one image (f = 0.1), class 2 in four (0.4), class 3 in all ten (1.0).
HAND_MADE = [(1, 3), (2, 3), (2, 3), (2, 3), (2, 3), (3,), (3,), (3,), (3,), (3,)]


def test_repeat_factors_equal_the_formula_on_a_hand_made_set():
    t = 0.3
    factors = repeat_factors(HAND_MADE, threshold=t)
    class_factor = {1: max(1, math.sqrt(t / 0.1)), 2: max(1, math.sqrt(t / 0.4)), 3: max(1, math.sqrt(t / 1.0))}
    expected = [max(class_factor[c] for c in labels) for labels in HAND_MADE]
    torch.testing.assert_close(factors, torch.tensor(expected, dtype=torch.float64))
    assert factors[0] == pytest.approx(math.sqrt(3)) and factors[1:].eq(1).all()
    assert repeat_factors([(), (1,)], threshold=1.0).tolist() == [1.0, pytest.approx(math.sqrt(2))]  # no annotation: 1


def test_repeat_factor_epochs_round_stochastically_and_differ_per_epoch():
    sampler = RepeatFactorSampler(HAND_MADE, seed=0, threshold=0.3)  # image 0: r = 1.732
    repeats = []
    for epoch in range(400):
        order = sampler.epoch_indices(epoch)
        counts = torch.bincount(order, minlength=len(HAND_MADE))
        assert counts[1:].eq(1).all() and counts[0] in (1, 2)
        repeats.append(int(counts[0]))
    assert np.mean(repeats) == pytest.approx(math.sqrt(3), abs=0.06)  # E[⌊r⌋ + Bernoulli(r − ⌊r⌋)] = r
    assert torch.equal(sampler.epoch_indices(3), RepeatFactorSampler(HAND_MADE, seed=0, threshold=0.3).epoch_indices(3))
    assert sampler.nominal_length == round(9 + math.sqrt(3))


def test_class_balanced_sampling_draws_classes_uniformly():
    sampler = ClassBalancedSampler(HAND_MADE, seed=1)
    drawn = torch.cat([sampler.epoch_indices(epoch) for epoch in range(600)])
    assert len(sampler.epoch_indices(0)) == len(HAND_MADE)
    share = torch.bincount(drawn, minlength=10).double() / len(drawn)
    # Image 0 is the only image of class 1 (1/3 of draws) and one of ten of class 3: 1/3 + 1/30.
    assert share[0].item() == pytest.approx(1 / 3 + 1 / 30, abs=0.015)
    # Images 1–4 hold class 2 (1/3 over four) and class 3: 1/12 + 1/30 each.
    assert share[1:5].mean().item() == pytest.approx(1 / 12 + 1 / 30, abs=0.01)


def test_uniform_sampler_keeps_the_trainers_original_order():
    order = UniformSampler(7, seed=3).epoch_indices(2)
    assert torch.equal(order, torch.randperm(7, generator=torch.Generator().manual_seed(3 * 100_003 + 2)))


def test_sampler_errors_name_the_choices():
    with pytest.raises(ValueError, match="unknown sampler 'magic'.*repeat_factor"):
        build_sampler("magic", HAND_MADE)
    with pytest.raises(ValueError, match="takes no option"):
        build_sampler("class_balanced", HAND_MADE, threshold=0.1)
    with pytest.raises(ValueError, match="threshold t must be > 0"):
        build_sampler("repeat_factor", HAND_MADE, threshold=0)
    with pytest.raises(ValueError, match="no image has an annotation"):
        ClassBalancedSampler([(), ()])


def test_repeated_visits_get_their_own_flip_and_rois(smoke_train):
    assert occurrences(torch.tensor([4, 1, 4, 4, 2, 1])).tolist() == [0, 0, 1, 2, 0, 1]
    for index in range(5):
        assert visit_flip(smoke_train, index, 0, 1) != visit_flip(smoke_train, index, 0, 0)
        assert visit_flip(smoke_train, index, 0, 2) == visit_flip(smoke_train, index, 0, 0)
    assert visit_key(0, 1, 5, 0) != visit_key(0, 1, 5, 1)
    unflipped = replace_flips(smoke_train)
    assert not any(visit_flip(unflipped, index, 0, visit) for index in range(5) for visit in range(3))


def replace_flips(dataset):
    """The same images without flips (an evaluation-style dataset)."""
    from acsl.data import LVISDetection

    return LVISDetection(dataset.ann_file, dataset.image_root, train=True, hflip_prob=0.0)


def _model(dataset, loss_name="softmax_ce", **options):
    torch.manual_seed(0)
    loss = build_loss(loss_name, dataset.num_classes, dataset.frequencies, class_image_counts=dataset.image_counts,
                      class_instance_counts=dataset.instance_counts, num_images=len(dataset), **options)
    return build_detector(get_profile("smoke").detector, dataset.num_classes, loss)


@pytest.fixture(scope="module")
def stage1(smoke_train, tmp_path_factory):
    config = TrainConfig(epochs=1, batch_size=4, lr=0.02, warmup_iters=2, lr_steps=(), log_every=1)
    return train(_model(smoke_train), smoke_train, config, tmp_path_factory.mktemp("s1"), device="cpu", progress=False)


def _stage2(smoke_train, stage1, tmp_path, mode, loss_name="softmax_ce", sampler="class_balanced"):
    model = _model(smoke_train, loss_name)
    load_stage1_weights(model, stage1)
    apply_stage2_classifier(model, mode)
    config = TrainConfig(epochs=1, batch_size=4, lr=0.02, warmup_iters=2, lr_steps=(), log_every=1)
    train(model, smoke_train, config, tmp_path, stage=2, device="cpu", progress=False,
          sampler=build_sampler(sampler, smoke_train.image_labels))
    return model


def test_lws_learns_only_a_scale_per_class(smoke_train, stage1, tmp_path):
    before = load_checkpoint(stage1)["model"]
    model = _stage2(smoke_train, stage1, tmp_path, "lws")
    classifier = model.roi_heads.box_predictor.cls_score
    assert isinstance(classifier, ScaledClassifier) and [n for n, _ in classifier.named_parameters()] == ["scale"]
    after = load_checkpoint(tmp_path / "checkpoint.pt")["model"]
    key = "roi_heads.box_predictor.cls_score."
    assert torch.equal(after[key + "weight"], before[key + "weight"]) and torch.equal(after[key + "bias"], before[key + "bias"])
    assert not torch.equal(after[key + "scale"], torch.ones_like(after[key + "scale"]))  # the scales did learn
    features = torch.randn(3, classifier.in_features)
    torch.testing.assert_close(classifier(features),
                               after[key + "scale"] * (features @ before[key + "weight"].T + before[key + "bias"]))


def test_crt_reinitialises_the_classifier_and_keeps_everything_else(smoke_train, stage1, tmp_path):
    before = load_checkpoint(stage1)["model"]
    model = _model(smoke_train)
    load_stage1_weights(model, stage1)
    apply_stage2_classifier(model, "reinit")
    state = model.state_dict()
    key = "roi_heads.box_predictor.cls_score.weight"
    assert not torch.equal(state[key], before[key])
    assert all(torch.equal(state[k], v) for k, v in before.items() if ".cls_score." not in k and k in state)


def test_bags_stage2_copies_the_stage1_rows_and_adds_others(smoke_train, stage1, tmp_path):
    before = load_checkpoint(stage1)["model"]
    model = _model(smoke_train, "bags", bins="0,5")
    load_stage1_weights(model, stage1)
    weight = model.roi_heads.box_predictor.cls_score.weight
    assert weight.shape[0] == model.classification_loss.num_logits > smoke_train.num_classes + 1
    torch.testing.assert_close(weight[: smoke_train.num_classes + 1], before["roi_heads.box_predictor.cls_score.weight"])


def test_stage2_modes_are_refused_where_they_make_no_sense(smoke_train):
    with pytest.raises(ValueError, match="unknown stage-2 classifier mode"):
        apply_stage2_classifier(_model(smoke_train), "magic")
    with pytest.raises(ValueError, match="needs a linear stage-1 classifier"):
        apply_stage2_classifier(_model(smoke_train, "seesaw"), "lws")
