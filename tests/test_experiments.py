"""Experiment specs: hashes that change with everything that decides a result, and early errors."""

from __future__ import annotations

import json

import pytest

from acsl.experiments import ExperimentSpec, RunStore, baseline_spec, decoupled_spec


def test_spec_hash_is_stable_and_option_order_does_not_matter():
    a = ExperimentSpec("smoke", "acsl", (("xi", 0.7), ("statistic_free", True)), stage=2)
    b = ExperimentSpec("smoke", "acsl", (("statistic_free", True), ("xi", 0.7)), stage=2)
    assert a == b and a.hash == b.hash


def test_spec_hash_changes_with_what_decides_the_result():
    base = decoupled_spec("smoke", "acsl", xi=0.7)
    others = [decoupled_spec("smoke", "acsl", xi=0.5), decoupled_spec("smoke", "acsl", seed=1, xi=0.7),
              decoupled_spec("quick", "acsl", xi=0.7), decoupled_spec("smoke", "bce"),
              baseline_spec("smoke"), baseline_spec("smoke", schedule=2)]
    assert len({base.hash, *(o.hash for o in others)}) == len(others) + 1


def test_stage2_specs_share_one_stage1_parent():
    parents = {decoupled_spec("smoke", "acsl", xi=xi).parent for xi in (0.1, 0.7, 0.9)}
    assert parents == {baseline_spec("smoke")}
    assert baseline_spec("smoke").parent is None


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
        (dict(profile="smoke", loss="focal"), "unknown loss 'focal'"),
        (dict(profile="smoke", loss="acsl", loss_options=(("xi", 1.5),), stage=2), r"xi .* \(0, 1\]"),
        (dict(profile="smoke", loss="bce", loss_options=(("gamma", 2.0),)), "bad options for loss 'bce'"),
        (dict(profile="smoke", stage=3), "stage must be 1 or 2"),
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
    monkeypatch.setattr("acsl.experiments.train", lambda *a, **k: pytest.fail("retrained a finished run"))
    monkeypatch.setattr("acsl.experiments.predict", lambda *a, **k: pytest.fail("re-evaluated a finished run"))
    again = RunStore(tmp_path / "runs", data_root=tmp_path / "data", progress=False).metrics(spec)
    assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True)
    assert set(first["metrics"]) == {"AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf"}
