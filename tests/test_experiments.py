"""Experiment specs: hashes that change with everything that decides a result, and early errors."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from acsl.runs import ExperimentSpec, RunStore, baseline_spec, decoupled_spec


def test_spec_hash_is_stable_and_option_order_does_not_matter():
    a = ExperimentSpec("smoke", "acsl", (("xi", 0.7), ("statistic_free", True)), stage=2)
    b = ExperimentSpec("smoke", "acsl", (("statistic_free", True), ("xi", 0.7)), stage=2)
    assert a == b and a.hash == b.hash


def test_spec_hash_changes_with_what_decides_the_result():
    base = decoupled_spec("smoke", "acsl", xi=0.7)
    others = [decoupled_spec("smoke", "acsl", xi=0.5), decoupled_spec("smoke", "acsl", seed=1, xi=0.7),
              decoupled_spec("quick", "acsl", xi=0.7), decoupled_spec("smoke", "bce"),
              baseline_spec("smoke"), baseline_spec("smoke", schedule=2),
              decoupled_spec("smoke", "acsl", cached=True, xi=0.7), replace(base, batch_size=8)]
    assert len({base.hash, *(o.hash for o in others)}) == len(others) + 1


def test_stage2_specs_share_one_stage1_parent():
    parents = {decoupled_spec("smoke", "acsl", xi=xi).parent for xi in (0.1, 0.7, 0.9)}
    assert parents == {baseline_spec("smoke")}
    assert baseline_spec("smoke").parent.stage == 0  # the pretrained start (tests/test_pretrain.py)
    assert baseline_spec("lvis-v0.5").parent is None


def test_a_total_batch_scales_the_lr_linearly_and_reaches_the_parent():
    spec = replace(decoupled_spec("quick", "acsl", xi=0.7), batch_size=16)
    profile_batch, profile_lr = 8, 0.02  # the quick profile's stage 2
    assert spec.train_config().batch_size == 16 and spec.train_config().lr == pytest.approx(profile_lr * 16 / profile_batch)
    assert spec.parent.batch_size == 16 and "batch16" in spec.name


def test_a_batch_equal_to_the_profiles_names_the_same_run():
    plain = decoupled_spec("quick", "acsl", xi=0.7)
    assert replace(plain, batch_size=8).hash == plain.hash  # the quick profile's batch
    assert decoupled_spec("quick", "acsl", detector={"backbone": "narrow_resnet_deep"}, xi=0.7).hash != plain.hash


def test_a_cached_cascade_stage2_is_its_own_run_and_bad_detectors_are_refused_at_once():
    cached = decoupled_spec("quick", "acsl", cached=True, detector={"architecture": "cascade_rcnn"}, xi=0.7)
    exact = decoupled_spec("quick", "acsl", detector={"architecture": "cascade_rcnn"}, xi=0.7)
    assert cached.hash != exact.hash and "cached" in cached.name and cached.parent == exact.parent
    with pytest.raises(ValueError, match="unknown backbone 'vgg'"):
        baseline_spec("quick", detector={"backbone": "vgg"})
    with pytest.raises(ValueError, match="unknown detector field"):
        baseline_spec("quick", detector={"depth": 3})


def test_cli_arguments_name_the_same_spec():
    from acsl.cli.arguments import spec_arguments, spec_from_arguments
    from acsl.cli.main import build_parser

    spec = ExperimentSpec("smoke", "acsl", (("xi", 0.7), ("statistic_free", True)), stage=2, seed=3, batch_size=8,
                          cached=True)
    assert spec_from_arguments(build_parser().parse_args(["train", *spec_arguments(spec)])) == spec


def test_schedule_multiplies_the_stage1_epochs_and_steps():
    from acsl.profiles import get_profile

    profile = get_profile("quick")
    two = baseline_spec("quick", schedule=2).train_config()
    assert two.epochs == 2 * profile.stage1.epochs
    assert two.lr_steps == tuple(2 * s for s in profile.stage1.lr_steps)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(profile="huge"), "unknown profile 'huge'"),
        (dict(profile="smoke", loss="magic"), "unknown loss 'magic'"),
        (dict(profile="smoke", loss="acsl", loss_options=(("xi", 1.5),), stage=2), r"xi .* \(0, 1\]"),
        (dict(profile="smoke", loss="bce", loss_options=(("gamma", 2.0),)), "bad options for loss 'bce'"),
        (dict(profile="smoke", stage=3), "stage must be 0 \\(pretraining\\), 1 or 2"),
        (dict(profile="smoke", schedule=0), "schedule must be a positive"),
    ],
)
def test_bad_specs_fail_at_once(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ExperimentSpec(**kwargs)


def test_finished_runs_are_served_from_the_store(tmp_path, smoke_bench, monkeypatch):
    store = RunStore(tmp_path / "runs", data_root=tmp_path / "data", progress=False)
    spec = baseline_spec("smoke")
    first = store.metrics(spec)
    assert store.is_done(spec)
    monkeypatch.setattr("acsl.runs.store.train", lambda *a, **k: pytest.fail("retrained a finished run"))
    monkeypatch.setattr("acsl.runs.store.predict", lambda *a, **k: pytest.fail("re-evaluated a finished run"))
    again = RunStore(tmp_path / "runs", data_root=tmp_path / "data", progress=False).metrics(spec)
    assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True)
    assert set(first["metrics"]) == {"AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf"}


def test_the_cached_stage2_runs_through_the_store_on_the_shared_stage1(tmp_path, smoke_bench):
    store = RunStore(tmp_path / "runs", data_root=tmp_path / "data", progress=False)
    record = store.metrics(decoupled_spec("smoke", "acsl", cached=True, xi=0.7))
    assert record["num_detections"] > 0 and record["timing"]["cache_s"] > 0
    parent_dir = store.run_dir(baseline_spec("smoke"))
    meta = parent_dir / "roi_cache" / "meta.json"
    assert meta.is_file()
    built = ((parent_dir / "roi_cache").stat().st_ino, meta.stat().st_mtime_ns)
    second = store.metrics(decoupled_spec("smoke", "acsl", cached=True, xi=0.3))
    # the cache is reused, not rebuilt: a rebuild renames a fresh directory into place
    assert ((parent_dir / "roi_cache").stat().st_ino, meta.stat().st_mtime_ns) == built
    assert second["num_detections"] > 0 and store.run_dir(decoupled_spec("smoke", "acsl", cached=True, xi=0.3)) != store.run_dir(decoupled_spec("smoke", "acsl", cached=True, xi=0.7))
