"""The claims page's rows (acsl.claims) and the seed summary of the tables (acsl.tables.seed_summary):
paired differences over seeds, their 95 % t interval, and the verdict in one form for every notebook."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from acsl.claims import (CLAIM_COLUMNS, claim_row, format_difference, presentable, read_claims, save_claims)
from acsl.tables import INTERVAL, number, seed_summary, side_by_side_interval


def test_three_seeds_above_zero_hold_and_the_interval_is_the_t_interval():
    row = claim_row("ACSL raises APr", {0: 5.2, 1: 5.1, 2: 6.0}, "greater", "quick", 14.34, "table2_xi_ablation", "Claims")
    mean, spread = 16.3 / 3, pd.Series([5.2, 5.1, 6.0]).std(ddof=1)
    half = 4.302652729911275 * spread / math.sqrt(3)  # t(0.975, 2)
    assert row["ours"] == pytest.approx(mean) and row["low"] == pytest.approx(mean - half)
    assert row["high"] == pytest.approx(mean + half) and row["seeds"] == 3 and row["verdict"] == "holds"
    assert row["paper"] == 14.34 and (row["notebook"], row["section"]) == ("table2_xi_ablation", "Claims")


def test_an_interval_across_the_bound_cannot_be_judged_and_one_on_the_other_side_does_not_hold():
    crossing = claim_row("c", [1.0, -0.5, 2.0], "greater", "quick", None, "n", "s")
    assert crossing["verdict"].startswith("cannot be judged (the interval [") and crossing["verdict"].endswith("crosses 0)")
    assert math.isnan(crossing["paper"])
    against = claim_row("c", [-3.0, -3.2, -2.9], "greater", "quick", 1.0, "n", "s")
    assert against["verdict"] == "does not hold"
    within = claim_row("APf within 1", [0.2, -0.1, 0.3], "within", "quick", 0.09, "n", "s", tolerance=1.0)
    assert within["verdict"] == "holds"


def test_one_seed_gives_no_interval_and_smoke_only_checks_the_pipeline():
    one = claim_row("c", 4.0, "greater", "quick", 2.0, "n", "s")
    assert one["verdict"] == "cannot be judged (one seed, no interval)" and math.isnan(one["low"])
    smoke = claim_row("c", [4.0, 5.0, 6.0], "greater", "smoke", 2.0, "n", "s")
    assert smoke["verdict"] == "pipeline check only (smoke)"
    undefined = claim_row("APf within 1", float("nan"), "within", "quick", 0.1, "n", "s", tolerance=1.0)
    assert undefined["verdict"].startswith("cannot be judged (undefined in this profile")


def test_claims_round_trip_through_their_csv(tmp_path):
    rows = [claim_row("a", [1.0, 2.0], "greater", "quick", 3.0, "table4_sota", "Claims"),
            claim_row("b", 1.0, "greater", "quick", None, "table4_sota", "Claims")]
    path = save_claims(rows, tmp_path, "table4_sota")
    assert path == tmp_path / "table4_sota_claims.csv"
    back = read_claims(path)
    assert [r["claim"] for r in back] == ["a", "b"] and list(back[0]) == list(CLAIM_COLUMNS)
    assert back[0]["ours"] == pytest.approx(1.5) and math.isnan(back[1]["paper"]) and math.isnan(back[1]["low"])


def test_a_file_that_is_not_a_claims_file_is_named(tmp_path):
    path = tmp_path / "table2_xi_ablation.csv"
    pd.DataFrame({"claim": ["a"], "ours": [1.0]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"table2_xi_ablation.csv: not a claims file \(missing columns paper, low"):
        read_claims(path)


def test_the_marks_a_reader_sees():
    assert format_difference(5.2, 3.1, 7.3) == "+5.20 [+3.10, +7.30]"
    assert format_difference(5.2, float("nan"), float("nan")) == "+5.20"
    assert format_difference(float("nan"), float("nan"), float("nan")) == "undefined"
    shown = presentable(pd.DataFrame([claim_row("a", 1.0, "greater", "quick", None, "n", "s")]).set_index("claim"))
    assert shown.loc["a", "paper"] == "—" and shown.loc["a", "ours [95% CI]"] == "+1.00"
    assert number(float("nan")) == "undefined" and number(1.234, signed=True) == "+1.23" and number(2.0) == "2.00"


def test_seed_summary_is_the_mean_and_the_t_half_width_over_defined_seeds():
    index = pd.Index(["baseline", "ACSL"], name="method")
    frames = {seed: pd.DataFrame({"mAP": [30.0 + seed, 33.0], "APf": [50.0, math.nan if seed == 2 else 51.0 + seed]},
                                 index=index) for seed in (0, 1, 2)}
    mean, half = seed_summary(frames)
    assert mean.loc["baseline", "mAP"] == pytest.approx(31.0)
    assert half.loc["baseline", "mAP"] == pytest.approx(4.302652729911275 * 1.0 / math.sqrt(3))
    assert half.loc["ACSL", "mAP"] == 0.0
    # ACSL's APf is defined at two seeds: its mean and interval use those two (t(0.975, 1) = 12.706)
    assert mean.loc["ACSL", "APf"] == pytest.approx(51.5)
    assert half.loc["ACSL", "APf"] == pytest.approx(12.706204736174694 * math.sqrt(0.5) / math.sqrt(2))
    one_seed, no_interval = seed_summary({0: frames[0]})
    assert no_interval.isna().all().all() and (one_seed == frames[0]).all().all()


def test_a_method_run_at_fewer_seeds_keeps_its_row():
    full = pd.DataFrame({"mAP": [30.0, 20.0]}, index=pd.Index(["ACSL", "LDAM"], name="method"))
    mean, half = seed_summary({0: full, 1: full.loc[["ACSL"]] + 2})
    assert list(mean.index) == ["ACSL", "LDAM"] and mean.loc["LDAM", "mAP"] == 20.0 and math.isnan(half.loc["LDAM", "mAP"])
    paper = pd.DataFrame({"mAP": [26.36]}, index=pd.Index(["ACSL"], name="method"))
    table = side_by_side_interval(mean, half, paper, ("mAP",))
    assert list(table.columns) == [("mAP", "ours"), ("mAP", INTERVAL), ("mAP", "paper")]
    assert table.loc["ACSL", ("mAP", "paper")] == 26.36 and math.isnan(table.loc["LDAM", ("mAP", "paper")])
