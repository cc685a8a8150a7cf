"""Table 4's methods as experiment recipes, the spec fields they add (sampler, stage-2 classifier), and
the dataset-size-dependent hyper-parameters the synthetic profiles carry."""

from __future__ import annotations

import numpy as np
import pytest

from acsl import paper
from acsl.cli.arguments import spec_arguments, spec_from_arguments
from acsl.cli.main import build_parser
from acsl.data.stats import equivalent_threshold, load_category_stats
from acsl.runs import AFTER_ACSL_METHODS, METHODS, NOT_IMPLEMENTED, ExperimentSpec, baseline_spec, method_spec
from acsl.profiles import NORCAL_GAMMA, get_profile


def test_every_row_of_the_papers_table4_is_a_method_or_named_as_not_implemented():
    for method, _ in paper.TABLE4:
        assert method in METHODS or method in NOT_IMPLEMENTED, method
    assert all(METHODS[m].in_paper for m in {m for m, _ in paper.TABLE4} - set(NOT_IMPLEMENTED))


@pytest.mark.parametrize("profile", ["smoke", "lvis-v0.5"])
def test_methods_train_as_their_papers_do_on_one_stage1_detector(profile):
    baseline = baseline_spec(profile)
    for label, method in METHODS.items():
        spec = method_spec(profile, label)
        assert spec.stage == method.stage and spec.loss == method.loss
        if spec.stage == 2:
            assert spec.parent == baseline  # every decoupled method starts from the same softmax detector
    assert method_spec(profile, "Softmax CE") == baseline
    assert method_spec(profile, "RFS").sampler_options == (("threshold", get_profile(profile).sampler_defaults["repeat_factor"]["threshold"]),)
    assert dict(method_spec(profile, "EQL").loss_options)["lambda_"] == get_profile(profile).loss_defaults["eql"]["lambda_"]
    assert (method_spec(profile, "LWS").sampler, method_spec(profile, "LWS").classifier) == ("class_balanced", "lws")
    assert (method_spec(profile, "cRT").sampler, method_spec(profile, "cRT").classifier) == ("class_balanced", "reinit")
    with pytest.raises(ValueError, match="unknown method 'SimCal'"):
        method_spec(profile, "SimCal")


def test_new_spec_fields_at_their_defaults_keep_the_hash_of_earlier_runs():
    plain = ExperimentSpec("smoke", "softmax_ce")
    assert not {"sampler", "sampler_options", "classifier"} & set(plain.resolved()["spec"])
    rfs = ExperimentSpec("smoke", "softmax_ce", sampler="repeat_factor", sampler_options=(("threshold", 0.5),))
    assert rfs.resolved()["spec"]["sampler"] == "repeat_factor" and rfs.hash != plain.hash
    lws = ExperimentSpec("smoke", "softmax_ce", stage=2, sampler="class_balanced", classifier="lws")
    crt = ExperimentSpec("smoke", "softmax_ce", stage=2, sampler="class_balanced", classifier="reinit")
    assert len({lws.hash, crt.hash, ExperimentSpec("smoke", "softmax_ce", stage=2).hash}) == 3
    assert "class_balanced" in lws.name and "lws" in lws.name


@pytest.mark.parametrize("label", ["RFS", "LWS", "cRT", "BAGS", "EQL"])
def test_cli_arguments_name_the_same_method_spec(label):
    spec = method_spec("smoke", label)
    assert spec_from_arguments(build_parser().parse_args(["train", *spec_arguments(spec)])) == spec


@pytest.mark.parametrize("kwargs,message", [
    ({"sampler": "magic"}, "unknown sampler"),
    ({"sampler": "uniform", "sampler_options": (("threshold", 0.1),)}, "takes no option"),
    ({"classifier": "lws"}, "needs stage=2"),
    ({"classifier": "magic", "stage": 2}, "unknown classifier mode"),
    ({"classifier": "lws", "stage": 2, "loss": "bags"}, "plain C \\+ 1 linear classifier"),
])
def test_bad_sampler_and_classifier_fields_fail_at_once(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ExperimentSpec(**{"profile": "smoke", "loss": "softmax_ce", **kwargs})


def test_smoke_profile_hyper_parameters_equal_the_lvis_mapping_on_its_benchmark(smoke_train):
    """RFS's t, EQL's λ and BAGS's bins of the smoke profile keep their LVIS meaning on its own counts
    (the quick profile's were measured the same way on its seed-0 benchmark)."""
    lvis = load_category_stats("lvis_v0.5")
    profile = get_profile("smoke")
    line = equivalent_threshold(1e-3 * 56_740, lvis["image_count"], smoke_train.image_counts)
    assert profile.sampler_defaults["repeat_factor"]["threshold"] == pytest.approx(line / len(smoke_train))
    bins = [0] + [equivalent_threshold(b, lvis["instance_count"], smoke_train.instance_counts) for b in (10, 100, 1000)]
    assert profile.loss_defaults["bags"]["bins"] == ",".join(map(str, bins))
    tail = np.asarray(smoke_train.image_counts) / len(smoke_train) < profile.loss_defaults["eql"]["lambda_"]
    assert tail.tolist() == [f in ("r", "c") for f in smoke_train.frequencies]  # EQL's tail = rare + common, as on LVIS


def test_equivalent_threshold_keeps_the_share_of_classes_below_the_line():
    reference = np.arange(1, 101)  # 1..100: a line at 26 has 25 % of the classes below it
    target = np.array([1, 1, 2, 3, 5, 8, 13, 21])
    assert equivalent_threshold(26, reference, target) == 2  # the 2 smallest of 8 (25 %) fall below 2
    assert equivalent_threshold(1000, reference, target) == 22  # every class below
    assert equivalent_threshold(1, reference, target) == 1
    with pytest.raises(ValueError, match="non-empty"):
        equivalent_threshold(5, [], target)


def test_the_methods_after_acsl_train_end_to_end_and_norcal_evaluates_the_softmax_baseline():
    for label in ("ECM", "GOL", "DropLoss"):
        spec = method_spec("quick", label)
        assert spec.stage == 1 and spec.trained_as is None and spec.parent == baseline_spec("quick").parent
    assert dict(method_spec("quick", "GOL").loss_options)["lambda_"] == pytest.approx(100.4 / 1000)
    # the ones Table 4 also runs are the same specs there, so its runs are shared
    for label in ("Softmax CE", "ACSL", "EQLv2", "Seesaw"):
        assert AFTER_ACSL_METHODS[label] is METHODS[label]
    norcal = method_spec("quick", "NorCal", seed=2)
    assert dict(norcal.loss_options)["gamma"] == NORCAL_GAMMA > 0  # chosen on quick-tuning
    assert norcal.trained_as == baseline_spec("quick", seed=2)  # no training of its own
    assert "post hoc" in AFTER_ACSL_METHODS["NorCal"].training
    # its hash follows the detector it evaluates; a base loss other than softmax is another detector
    assert norcal.resolved()["trained_as"] == baseline_spec("quick", seed=2).hash
    other = ExperimentSpec(profile="quick", loss="norcal", loss_options=(("base", "bce"), ("gamma", 0.5)))
    assert other.trained_as == ExperimentSpec(profile="quick", loss="bce") and other.hash != norcal.hash
    assert baseline_spec("quick").trained_as is None and "trained_as" not in baseline_spec("quick").resolved()
    with pytest.raises(ValueError, match="unknown method 'Nope'"):
        method_spec("quick", "Nope")
