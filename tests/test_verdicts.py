"""The verdict on a paper claim from paired per-seed differences (acsl.verdicts), on hand-made numbers:
the t quantile (scipy's) equals the printed table, and each rule gives its verdict."""

from __future__ import annotations

import math

import pytest

from acsl.verdicts import (
    DOES_NOT_HOLD,
    HOLDS,
    ONE_SEED,
    SMOKE,
    Verdict,
    paired_verdict,
    t_quantile_975,
)

#: t(0.975, ν) for ν = 1..30, as printed (three decimals) in the usual tables, e.g. the NIST/SEMATECH
#: e-Handbook of Statistical Methods, §1.3.6.7.2, "Critical values of the Student's t distribution".
T_TABLE = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
           2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
           2.045, 2.042]


def test_the_t_quantile_equals_the_printed_table():
    assert [round(t_quantile_975(dof), 3) for dof in range(1, 31)] == T_TABLE
    assert t_quantile_975(1) == pytest.approx(math.tan(0.475 * math.pi), rel=1e-9)  # Cauchy: exact
    assert t_quantile_975(2) == pytest.approx(math.sqrt(2 * 0.95**2 / (1 - 0.95**2)), rel=1e-9)  # t/√(2+t²) = 0.95
    assert 1.96 < t_quantile_975(1000) < 1.963  # tends to the normal 1.95996


@pytest.mark.parametrize("dof", [0, -1, 2.5, True])
def test_a_bad_dof_is_refused(dof):
    with pytest.raises(ValueError, match="^dof: expected an integer >= 1"):
        t_quantile_975(dof)


def test_holds_when_the_interval_lies_above_zero():
    verdict = paired_verdict([1.0, 1.2, 0.8], "greater", "quick")
    # mean 1.0, s = 0.2, half-width t(0.975, 2) · 0.2 / √3 = 4.30265 · 0.11547 = 0.49683
    assert verdict == Verdict(HOLDS, pytest.approx(1.0), pytest.approx(0.50317, abs=1e-5),
                              pytest.approx(1.49683, abs=1e-5), 3)
    assert str(verdict) == "holds"


def test_does_not_hold_when_the_interval_lies_on_the_other_side():
    assert paired_verdict([-1.0, -1.2, -0.8], "greater", "quick").verdict == DOES_NOT_HOLD
    assert paired_verdict([1.0, 1.2, 0.8], "less", "quick").verdict == DOES_NOT_HOLD
    assert paired_verdict([-1.0, -1.2, -0.8], "less", "quick").verdict == HOLDS


def test_cannot_be_judged_when_the_interval_crosses_zero():
    verdict = paired_verdict([1.0, -1.2, 0.8], "greater", "quick")
    # mean 0.2, s = √1.48 = 1.21655, half-width 4.30265 · 1.21655 / √3 = 3.02208
    assert verdict.low == pytest.approx(-2.82208, abs=1e-5) and verdict.high == pytest.approx(3.22208, abs=1e-5)
    assert verdict.verdict == "cannot be judged (the interval [-2.82, 3.22] crosses 0)"
    # positive mean but a wide interval: still no verdict; equal seeds touching 0: none either
    assert paired_verdict([0.5, 0.1], "greater", "quick").verdict.startswith("cannot be judged (the interval")
    assert paired_verdict([0.0, 0.0], "greater", "quick").verdict == "cannot be judged (the interval [0, 0] crosses 0)"


def test_within_a_tolerance():
    assert paired_verdict([0.1, 0.2, -0.1], "within", "quick", tolerance=0.5).verdict == HOLDS
    assert paired_verdict([2.0, 2.1, 1.9], "within", "quick", tolerance=0.5).verdict == DOES_NOT_HOLD
    assert paired_verdict([0.4, 0.6, 0.3], "within", "quick", tolerance=0.5).verdict == \
        "cannot be judged (the interval [0.0539, 0.813] crosses +0.5)"
    assert paired_verdict([-3.0, 3.0], "within", "quick", tolerance=0.5).verdict.endswith("crosses ±0.5)")


def test_undefined_values_cannot_be_judged_and_are_named():
    by_seed = paired_verdict({0: 1.0, 1: float("nan"), 2: None}, "greater", "quick")
    assert by_seed.verdict == "cannot be judged (undefined in this profile: no finite value for seed 1, seed 2)"
    assert math.isnan(by_seed.mean) and by_seed.low is None and by_seed.seeds == 3
    assert paired_verdict(float("nan"), "greater", "lvis-v0.5").verdict == \
        "cannot be judged (undefined in this profile: no finite value for the difference)"
    assert paired_verdict([1.0, math.inf], "less", "quick").verdict.endswith("for difference 2 of 2)")


def test_smoke_is_a_pipeline_check_whatever_the_numbers():
    for differences in ([1.0, 1.2, 0.8], [float("nan")], 0.3):
        assert paired_verdict(differences, "greater", "smoke").verdict == SMOKE
    assert paired_verdict([1.0, 1.2, 0.8], "greater", "oi-smoke").verdict == SMOKE
    assert paired_verdict([1.0, 1.2, 0.8], "greater", "smoke").mean == pytest.approx(1.0)  # the numbers stay


def test_one_seed_has_no_interval():
    for differences in (0.5, [0.5], {3: 0.5}):
        verdict = paired_verdict(differences, "greater", "quick")
        assert verdict == Verdict(ONE_SEED, 0.5, None, None, 1)
    assert ONE_SEED == "cannot be judged (one seed, no interval)"


@pytest.mark.parametrize("args, kwargs, message", [
    (([1.0, 2.0], "bigger", "quick"), {}, r"^claim: expected one of greater, less, within, got 'bigger'$"),
    (([1.0, 2.0], "within", "quick"), {}, r"^tolerance: the claim 'within' needs a finite tolerance > 0, got None$"),
    (([1.0, 2.0], "within", "quick"), {"tolerance": -1}, r"^tolerance: .* got -1$"),
    (([1.0, 2.0], "greater", "quick"), {"tolerance": 0.5}, r"^tolerance: only the claim 'within' takes a tolerance"),
    (([1.0, 2.0], "greater", ""), {}, r"^profile: expected a profile name"),
    (([], "greater", "quick"), {}, r"^differences: expected at least one per-seed difference, got none$"),
    (("1.0", "greater", "quick"), {}, r"^differences: expected a number, a list of per-seed numbers"),
    (([1.0, "x"], "greater", "quick"), {}, r"^differences: difference 2 of 2 must be a number or None, got 'x'$"),
])
def test_bad_inputs_name_the_parameter(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        paired_verdict(*args, **kwargs)
