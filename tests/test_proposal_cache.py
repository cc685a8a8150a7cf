"""Fine-tunes on the pretrained start's cached FPN maps and proposals (``acsl.engine.proposal_cache``):
the same losses and gradients as training the frozen detector on images, one cache per start and images."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from acsl.data.samplers import UniformSampler
from acsl.engine.proposal_cache import CachedRoIHeadStep, ProposalCache, build_proposal_cache
from acsl.engine.steps import DetectorStep
from acsl.runs import RunStore, baseline_spec, build_model, decoupled_spec
from acsl.runs.spec import ExperimentSpec

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("proposal-cache")
    return RunStore(root / "runs", data_root=root / "data", device="cpu", progress=False)


def _steps(store: RunStore, spec: ExperimentSpec, stage: int):
    """The cached step (float32 maps and pooled rows: exact) and the image step on two copies of the same detector."""
    train_set = store.datasets(spec)[0]
    cached_model, image_model = (store._initial_model(spec, train_set) for _ in range(2))
    cache = build_proposal_cache(cached_model, train_set, store.run_dir(spec.pretrained_start) / "fp32", device="cpu",
                                 dtype=torch.float32, pooled_dtype=torch.float32, progress=False)
    assert cache.pooled is not None
    sampler = UniformSampler(len(train_set), spec.seed)
    cached = CachedRoIHeadStep(cached_model, cache, train_set, sampler, 4, spec.seed, CPU, torch.float16, False, stage=stage)
    on_images = DetectorStep(image_model, train_set, sampler, 4, stage=stage, seed=spec.seed, device=CPU,
                             amp_dtype=torch.float16, use_amp=False)
    return cached, on_images


@pytest.mark.parametrize("stage", [1, 2])
def test_the_cached_step_equals_the_frozen_detector_on_images(store, stage):
    spec = baseline_spec("smoke", seed=0) if stage == 1 else decoupled_spec("smoke", "acsl", xi=0.7)
    assert spec.on_cached_proposals
    cached, on_images = _steps(store, spec, stage)
    trained = {id(p) for p in cached.parameters()}, {id(p) for p in on_images.parameters()}
    assert len(trained[0]) == len(trained[1]) > 0
    epoch = 1  # the second epoch: its own flips and sampling keys
    for batch_cached, batch_images, _ in zip(cached.batches(epoch), on_images.batches(epoch), range(2)):
        out_cached, out_images = cached.run(batch_cached), on_images.run(batch_images)
        for name in ("loss_classifier", "loss_box_reg"):
            assert torch.allclose(out_cached.parts[name], out_images.parts[name], rtol=1e-5, atol=1e-6), name
        out_cached.loss.backward()
        (out_images.parts["loss_classifier"] if stage == 2
         else out_images.parts["loss_classifier"] + out_images.parts["loss_box_reg"]).backward()
    grads = {n: p.grad for n, p in cached.model.named_parameters() if p.grad is not None}
    reference = {n: p.grad for n, p in on_images.model.named_parameters() if p.grad is not None}
    assert grads.keys() == reference.keys() and grads
    assert all(name.startswith("roi_heads.") for name in grads)
    for name, grad in grads.items():
        assert torch.allclose(grad, reference[name], rtol=1e-4, atol=1e-6), name


def test_one_cache_per_pretrained_start_and_images_shared_by_its_fine_tunes(store):
    baseline = baseline_spec("smoke", seed=0)
    store.metrics(baseline)
    store.metrics(replace(baseline, loss="eql"))  # another end-to-end method from the same start
    caches = sorted(store.run_dir(baseline.parent).glob("proposal_cache-*"))
    assert len(caches) == 1 and not list(store.run_dir(baseline.parent).glob("*.partial"))
    cache = ProposalCache.open(caches[0])
    train_set = store.datasets(baseline)[0]
    assert cache.maps.shape[0] == 2 * len(train_set) and cache.maps.dtype.name == "float16"
    assert len(cache.proposals) == len(cache.targets) == 2 * len(train_set)
    # the flipped copy holds the flipped image's ground truth
    width = cache.image_sizes[cache.pair(0, True)][1]
    plain, flipped = cache.targets[cache.pair(0, False)]["boxes"], cache.targets[cache.pair(0, True)]["boxes"]
    assert torch.allclose(flipped[:, 0], width - plain[:, 2])
    assert store.timing(baseline)["cache_s"] >= 0 and store.timing(baseline)["train_s"] > 0
    # the exact stage 2 and the fast stage 2's feature cache read it too, and a stage-1 run's log says so
    store.metrics(decoupled_spec("smoke", "acsl", xi=0.7))
    store.metrics(decoupled_spec("smoke", "acsl", xi=0.7, cached=True))
    assert sorted(store.run_dir(baseline.parent).glob("proposal_cache-*")) == caches
    assert '"cached_proposals": true, "cached_pooled": true' in (store.run_dir(baseline) / "log.jsonl").read_text()
    assert [p.name.startswith("pooled-") for p in caches[0].iterdir() if p.is_dir()] == [True]  # float16 rows, once


def test_a_cache_refuses_images_of_different_sizes(tmp_path, store):
    spec = baseline_spec("smoke", seed=0)
    train_set = store.datasets(spec)[0]
    model = store._initial_model(spec, train_set)

    class MixedSizes:
        ann_file, flips = train_set.ann_file, False

        def __len__(self):
            return 3

        def get(self, index, flip):
            image, target = train_set.get(index, flip)
            return (image if index < 2 else torch.nn.functional.pad(image, (0, 64))), target

    with pytest.raises(ValueError, match="one padded size"):
        build_proposal_cache(model, MixedSizes(), tmp_path, device="cpu", batch_size=2, progress=False)
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


def test_frozen_rpn_needs_a_frozen_backbone():
    from acsl.config import DetectorConfig

    with pytest.raises(ValueError, match="frozen_rpn needs frozen_backbone"):
        DetectorConfig(frozen_rpn=True)


def test_a_cache_above_the_limit_is_refused_and_leaves_nothing(tmp_path, store):
    from acsl.engine.roi_cache import CacheTooLargeError

    spec = baseline_spec("smoke", seed=0)
    train_set = store.datasets(spec)[0]
    model = store._initial_model(spec, train_set)
    with pytest.raises(CacheTooLargeError, match="FPN-map and proposal cache"):
        build_proposal_cache(model, train_set, tmp_path, device="cpu", progress=False, limit_gb=1e-6)
    assert not list(tmp_path.iterdir())
