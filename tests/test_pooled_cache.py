"""The pooled RoI-feature cache (``acsl.engine.pooled_cache``): float32 rows are RoIAlign's outputs bit for
bit, so the cached fine-tune's sampled RoIs, losses and gradients are exactly those of RoIAlign on the
cached maps; float16 rows agree to half precision, deterministically, and a run without them (the cache did
not fit) rounds RoIAlign to the same numbers; the cache is built once, memory-mapped, and a failed build
leaves nothing."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from acsl.data.samplers import UniformSampler
from acsl.data.subset import FirstImages
from acsl.engine.pooled_cache import ROWS_NAME, first_heads
from acsl.engine.proposal_cache import CachedRoIHeadStep, build_proposal_cache
from acsl.losses import build_loss
from acsl.models import build_detector
from acsl.models.roi_heads import sample_training_rois
from acsl.models.sampling import mix_seed
from acsl.profiles import get_profile

CPU = torch.device("cpu")


def _detector(dataset, architecture="faster_rcnn"):
    torch.manual_seed(0)
    loss = build_loss("acsl", dataset.num_classes, dataset.frequencies, xi=0.7)
    return build_detector(replace(get_profile("smoke").detector, architecture=architecture), dataset.num_classes, loss)


@pytest.fixture(scope="module")
def images(smoke_train):
    return FirstImages(smoke_train, 8)  # 16 (image, flip) pairs of about 300 candidates each


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("pooled")


def _cache(images, root, pooled_dtype, model=None, **kwargs):
    """float32 maps (RoIAlign on them is today's cached path) with pooled rows of ``pooled_dtype``."""
    return build_proposal_cache(model or _detector(images), images, root, device="cpu", batch_size=6, progress=False,
                                dtype=torch.float32, pooled_dtype=pooled_dtype, **kwargs)


@pytest.fixture(scope="module")
def cache32(images, root):
    return _cache(images, root, torch.float32)


@pytest.fixture(scope="module")
def cache16(images, root):
    return _cache(images, root, torch.float16)


def _run(model, cache, images, stage, batches=2):
    """Losses of the first ``batches`` steps of epoch 1 (its own flips and keys), backward after each."""
    step = CachedRoIHeadStep(model, cache, images, UniformSampler(len(images), 0), 4, 0, CPU, torch.float16, False, stage)
    step.parameters()
    losses = []
    for batch in step.batches(1)[:batches]:
        out = step.run(batch)
        out.loss.backward()
        losses.append({name: value.detach() for name, value in out.parts.items()})
    return losses, {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


def test_the_sampled_indices_are_torchvision_s_draw(images, cache32):
    heads = _detector(images).roi_heads
    chunk = [(0, False), (3, True)]
    _, proposals, targets, _ = cache32.inputs(chunk, CPU, maps=False)
    keys = [mix_seed(1, index) for index, _ in chunk]
    heads.fg_bg_sampler.image_keys = keys
    expected = heads.select_training_samples(proposals, targets)
    heads.fg_bg_sampler.image_keys = keys
    boxes, sampled, labels, regression = sample_training_rois(heads, proposals, targets)
    for image, (p, t) in enumerate(zip(proposals, targets)):
        assert torch.equal(boxes[image], expected[0][image]) and torch.equal(labels[image], expected[2][image])
        assert torch.equal(boxes[image], torch.cat([p, t["boxes"]])[sampled[image]])  # proposals, then ground truth
    assert all(torch.equal(a, b) for a, b in zip(regression, expected[3]))


def test_float32_rows_are_the_roialign_outputs_bit_for_bit(images, cache32):
    pooled = cache32.pooled
    assert isinstance(pooled.rows, np.memmap) and pooled.rows.dtype == np.float32  # read, never loaded whole
    assert pooled.shape == (64, 7, 7) and len(pooled.offsets) == 2 * len(images) + 1
    pair = cache32.pair(5, True)
    candidates = torch.cat([cache32.proposals[pair], cache32.targets[pair]["boxes"]])
    expected = first_heads(_detector(images)).box_roi_pool(cache32.features([pair], CPU), [candidates],
                                                           [cache32.image_sizes[pair]])
    every = torch.arange(len(candidates))
    assert torch.equal(pooled.read([pair], [every], CPU), expected)


@pytest.mark.parametrize("architecture, stage", [("faster_rcnn", 1), ("faster_rcnn", 2), ("cascade_rcnn", 1)])
def test_pooled_rows_give_the_losses_and_gradients_of_roialign(images, cache32, architecture, stage):
    on_rows = _run(_detector(images, architecture), cache32, images, stage)
    on_maps = _run(_detector(images, architecture), replace(cache32, pooled=None, pooled_dtype=None), images, stage)
    for rows, maps in zip(on_rows[0], on_maps[0]):
        assert rows.keys() == maps.keys() and all(torch.equal(rows[k], maps[k]) for k in rows)
    assert on_rows[1].keys() == on_maps[1].keys() and on_rows[1]
    assert all(torch.equal(on_rows[1][name], on_maps[1][name]) for name in on_rows[1])


def test_float16_rows_agree_to_half_precision_and_are_deterministic(images, cache16, root):
    assert cache16.pooled.rows.dtype == np.float16
    on_rows, grads = _run(_detector(images), cache16, images, stage=1)
    on_maps, reference = _run(_detector(images), replace(cache16, pooled=None, pooled_dtype=None), images, stage=1)
    # Each pooled value is rounded once to float16: relative error ≤ 2^-11 ≈ 4.9e-4, the size of the float16
    # maps' own rounding. The losses and the gradients are smooth in these inputs (fc6's weight gradient is
    # linear in them), so they differ by that order; measured here: losses 1e-7, gradients ≤ 9.4e-4 (fc6).
    for rows, maps in zip(on_rows, on_maps):
        for name in rows:
            torch.testing.assert_close(rows[name], maps[name], rtol=2e-3, atol=1e-5)
    for name, grad in grads.items():
        assert torch.linalg.norm(grad - reference[name]) <= 4e-3 * torch.linalg.norm(reference[name]), name
    again, again_grads = _run(_detector(images), cache16, images, stage=1)
    assert all(torch.equal(a[k], b[k]) for a, b in zip(on_rows, again) for k in a)
    assert all(torch.equal(grads[name], again_grads[name]) for name in grads)
    rebuilt = _cache(images, root / "rebuilt", torch.float16)  # a second build writes the same bytes
    assert (rebuilt.pooled.root / ROWS_NAME).read_bytes() == (cache16.pooled.root / ROWS_NAME).read_bytes()


@pytest.mark.parametrize("architecture", ["faster_rcnn", "cascade_rcnn"])
def test_without_rows_roialign_is_rounded_to_the_same_numbers(images, cache16, architecture):
    """A cache that did not fit (disk, limit) changes the speed of a run, never its numbers."""
    on_rows, grads = _run(_detector(images, architecture), cache16, images, stage=1)
    rounded, rounded_grads = _run(_detector(images, architecture), replace(cache16, pooled=None), images, stage=1)
    assert all(torch.equal(a[k], b[k]) for a, b in zip(on_rows, rounded) for k in a)
    assert grads.keys() == rounded_grads.keys() and all(torch.equal(grads[n], rounded_grads[n]) for n in grads)


def test_the_cache_is_built_once_and_reused(images, root, cache32, cache16):
    def identity(cache):
        stat = (cache.pooled.root / ROWS_NAME).stat()
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    assert cache16.pooled.root != cache32.pooled.root  # the key covers the storage type
    before = identity(cache32), identity(cache16)
    assert (identity(_cache(images, root, torch.float32)), identity(_cache(images, root, torch.float16))) == before
    assert sorted(p.name for p in cache32.root.iterdir() if p.is_dir()) == sorted(
        [cache32.pooled.root.name, cache16.pooled.root.name])


def test_an_interrupted_build_leaves_nothing(images, tmp_path, monkeypatch):
    model = _detector(images)
    pool = first_heads(model).box_roi_pool
    calls = []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return type(pool).forward(pool, *args)

    monkeypatch.setattr(pool, "forward", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _cache(images, tmp_path, torch.float16, model=model)
    (cache_dir,) = tmp_path.iterdir()  # the proposal cache, complete
    assert not [p.name for p in cache_dir.iterdir() if p.name.startswith("pooled")]
    monkeypatch.undo()
    assert _cache(images, tmp_path, torch.float16).pooled.rows.shape[0] > 0


@pytest.mark.parametrize("short_of", ["limit", "disk"])
def test_a_pooled_cache_that_does_not_fit_is_skipped_and_leaves_nothing(images, tmp_path, monkeypatch, short_of):
    if short_of == "disk":  # the rows (31 MB) fit the free 120 MB but would leave less than 10 % of the disk
        monkeypatch.setattr("shutil.disk_usage", lambda path: shutil._ntuple_diskusage(10 ** 9, 880 * 10 ** 6, 120 * 10 ** 6))
    match = "above the limit" if short_of == "limit" else "leaving less than 10% of the disk"
    with pytest.warns(UserWarning, match=f"no pooled RoI-feature cache.*{match}"):
        cache = _cache(images, tmp_path, torch.float16, limit_gb=0.01 if short_of == "limit" else None)
    assert cache.pooled is None and cache.pooled_dtype == torch.float16  # RoIAlign, rounded to float16
    assert not [p for p in cache.root.iterdir() if p.name.startswith("pooled")]


@pytest.mark.parametrize("architecture", ["faster_rcnn", "cascade_rcnn"])
def test_rows_past_a_frozen_first_layer_give_the_losses_and_gradients_of_roialign(images, root, architecture):
    """``DetectorConfig.frozen_fc6`` (the CPU profiles' fine-tune keeps the box head's first layer as pretrained):
    the rows are relu(fc6(pooled)) in float32, a twelfth of the pooled rows, and the step runs fc7 and the
    predictor on them (Cascade R-CNN: its first head; the later heads pool their refined boxes); the same losses
    and gradients as RoIAlign and the whole box head every step, up to the order of fc6's sums in a batch of
    another size."""
    model = _detector(images, architecture)
    first = first_heads(model)
    assert not any(p.requires_grad for p in first.box_head.fc6.parameters())  # smoke freezes it
    cache = _cache(images, root / f"fc6-{architecture}", torch.float16, model=model, after_fc6=True)
    assert cache.pooled.after_fc6 and cache.pooled.rows.dtype == np.float32
    assert cache.pooled.rows.shape[1] == first.box_head.fc6.out_features
    on_rows, grads = _run(_detector(images, architecture), cache, images, stage=1)
    on_maps, reference = _run(_detector(images, architecture), replace(cache, pooled=None), images, stage=1)
    for rows, maps in zip(on_rows, on_maps):
        for name in rows:
            torch.testing.assert_close(rows[name], maps[name], rtol=1e-5, atol=1e-6)
    assert grads.keys() == reference.keys() and any(name.endswith("box_head.fc7.weight") for name in grads)
    assert not any(".fc6." in name for name in grads)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, reference[name], rtol=1e-4, atol=1e-6)
    # another first layer is another cache
    other = _detector(images, architecture)
    with torch.no_grad():
        first_heads(other).box_head.fc6.bias.add_(1.0)
    assert _cache(images, root / f"fc6-{architecture}", torch.float16, model=other, after_fc6=True).pooled.root != cache.pooled.root


def test_each_pairs_iou_matching_is_computed_once_and_is_torchvision_s(images, cache32, monkeypatch):
    """The candidates and ground truth of an (image, flip) are fixed, so the step matches them once and reuses
    the result: the same losses and gradients as matching every step (RoIAlign path), no matching on a second visit."""
    heads_type = type(_detector(images).roi_heads)
    original = heads_type.assign_targets_to_proposals
    matched_images = []

    def counted(self, proposals, *args):
        matched_images.append(len(proposals))
        return original(self, proposals, *args)

    monkeypatch.setattr(heads_type, "assign_targets_to_proposals", counted)
    fresh = replace(cache32, pooled=replace(cache32.pooled, matches={}))
    first, first_grads = _run(_detector(images), fresh, images, stage=1)
    assert sum(matched_images) == 8 and len(fresh.pooled.matches) == 8  # two batches of 4 pairs, each matched once
    again, again_grads = _run(_detector(images), fresh, images, stage=1)
    assert sum(matched_images) == 8  # the second visit of the same pairs matches nothing
    every_step, every_step_grads = _run(_detector(images), replace(cache32, pooled=None, pooled_dtype=None), images, stage=1)
    for losses in (again, every_step):
        assert all(torch.equal(a[k], b[k]) for a, b in zip(first, losses) for k in a)
    for grads in (again_grads, every_step_grads):
        assert grads.keys() == first_grads.keys() and all(torch.equal(grads[n], first_grads[n]) for n in grads)
