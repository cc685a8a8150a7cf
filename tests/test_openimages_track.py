"""The Open Images track end to end at the smoke scale: the synthetic Open-Images-style set (hierarchy,
group-of boxes, verified image-level labels, the Open Images count curve), multi-label training through
the run store, the challenge metric, and the notebooks of Tables 5–7 under papermill."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import nbformat
import numpy as np
import pandas as pd
import pytest

from acsl.config import SyntheticConfig
from acsl.data import generate_benchmark
from acsl.data.openimages_synthetic import hierarchy_ancestors, openimages_files, write_openimages_style
from acsl.data.synthetic.curve import curve_quantiles as _curve_quantiles, train_targets as _train_targets
from acsl.runs import ExperimentSpec, baseline_spec, decoupled_spec, method_spec
from acsl.profiles import get_profile, openimages_counterpart
from acsl.report import reproduce


@pytest.fixture(scope="module")
def oi_bench(tmp_path_factory):
    bench = generate_benchmark(tmp_path_factory.mktemp("oi") / "bench", get_profile("oi-smoke").data, progress=False)
    train, val = write_openimages_style(bench)
    return bench, json.loads(train.read_text()), json.loads(val.read_text())


def test_openimages_style_set_has_a_hierarchy_group_of_boxes_and_verified_labels(oi_bench):
    _, train, val = oi_bench
    parents = {int(p) for ps in train["hierarchy"].values() for p in ps}
    assert parents and all(c["name"].startswith("any_") for c in train["categories"] if c["id"] in parents)
    assert [c["id"] for c in train["categories"]] == [c["id"] for c in val["categories"]]  # one category list
    assert any(a["is_group_of"] for a in train["annotations"])
    assert any(a["category_id"] in parents for a in train["annotations"])  # parents have boxes of their own
    present = {}
    for a in train["annotations"]:
        present.setdefault(a["image_id"], set()).add(a["category_id"])
    for image in train["images"]:
        assert set(image["pos_category_ids"]) == present.get(image["id"], set())
        assert not set(image["neg_category_ids"]) & present.get(image["id"], set())
    assert hierarchy_ancestors(train, {c["id"]: k for k, c in enumerate(train["categories"], start=1)})


def test_openimages_curve_has_fewer_rare_classes_than_lvis_and_keeps_old_configs():
    config = SyntheticConfig(num_categories=60, num_train_images=1000)
    lvis = _train_targets(config, _curve_quantiles(60)[1])
    oi_config = replace(config, curve="openimages")
    oi = _train_targets(oi_config, _curve_quantiles(60, "openimages")[1])
    assert (oi <= 10).sum() < (lvis <= 10).sum()  # Figure 2: Open Images has fewer very rare classes
    assert "curve" not in config.record() and oi_config.record()["curve"] == "openimages"
    with pytest.raises(ValueError, match="curve must be one of"):
        SyntheticConfig(curve="coco")


def test_the_track_trains_multi_label_from_a_bce_baseline():
    assert openimages_counterpart("quick") == "oi-quick" and openimages_counterpart("oi-smoke") == "oi-smoke"
    assert openimages_counterpart("lvis-v0.5") == "openimages" == openimages_counterpart("openimages")
    assert baseline_spec("oi-smoke").loss == "bce" and baseline_spec("smoke").loss == "softmax_ce"
    assert decoupled_spec("oi-smoke", "acsl", xi=0.7).parent == baseline_spec("oi-smoke")
    assert method_spec("oi-smoke", "Class Aware Sampling").sampler == "class_balanced"
    assert isinstance(ExperimentSpec("oi-smoke", "eql"), ExperimentSpec)


@pytest.fixture(scope="module")
def oi_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("oi-report")
    results = reproduce(profile="smoke", only=["table5_openimages_backbones", "table6_openimages_tail",
                                               "table7_openimages_methods"],
                        reports_dir=root / "reports", run_store=root / "runs", data_root=root / "data", progress=False)
    return root, results


def test_tables_5_to_7_execute_in_smoke_with_ours_beside_the_papers(oi_report):
    root, results = oi_report
    assert [r.name for r in results] == ["table5_openimages_backbones", "table6_openimages_tail", "table7_openimages_methods"]
    table5 = pd.read_csv(root / "reports" / "table5_openimages_backbones.csv", header=[0, 1], index_col=[0, 1])
    rows = ("baseline", "ACSL", "BCE stage 2 (same budget)")
    assert list(table5.index) == [(b, m) for b in ("ResNet50-FPN", "ResNet101-FPN", "ResNet152-FPN") for m in rows]
    assert table5[("AP", "ours")].notna().all() and table5.loc[("ResNet152-FPN", "ACSL"), ("AP", "paper")] == 62.8
    assert table5[("AP", "paper")].xs("BCE stage 2 (same budget)", level="method").isna().all()  # not in the paper
    per_seed = pd.read_csv(root / "reports" / "table5_openimages_backbones_per_seed.csv", index_col=[0, 1, 2])
    assert set(per_seed.index.get_level_values("seed")) == {0}  # smoke's one report seed
    table6 = pd.read_csv(root / "reports" / "table6_openimages_tail.csv", index_col=0)
    assert len(table6) == 10 and table6["img num"].is_monotonic_increasing
    assert not any(name.startswith("any_") for name in table6.index)  # leaf classes, not parents
    table7 = pd.read_csv(root / "reports" / "table7_openimages_methods.csv", header=[0, 1], index_col=0)
    assert list(table7.index) == ["Class Aware Sampling", "Equalization Loss", "ACSL", "BCE baseline (multi-label)",
                                  "BCE stage 2 (same budget)"]
    assert table7[("AP", "ours")].notna().all() and table7.loc["ACSL", ("AP", "paper")] == 61.7
    # Ours comes from the runs: the ACSL row is the run store's metric of that spec, and the control is BCE on
    # the same stage-2 recipe and parent.
    (acsl_dir,) = (root / "runs").glob("oi-smoke_stage2_acsl_xi0.7_1x_cached_seed0-*")  # the CPU profiles' default
    stored = json.loads((acsl_dir / "metrics.json").read_text())["metrics"]["AP50_OI"]
    assert table7.loc["ACSL", ("AP", "ours")] == pytest.approx(round(stored, 2), abs=0.006)
    (control_dir,) = (root / "runs").glob("oi-smoke_stage2_bce_1x_cached_seed0-*")
    control = json.loads((control_dir / "metrics.json").read_text())["metrics"]["AP50_OI"]
    assert table7.loc["BCE stage 2 (same budget)", ("AP", "ours")] == pytest.approx(round(control, 2), abs=0.006)
    assert np.isclose(table5.loc[("ResNet50-FPN", "ACSL"), ("AP", "ours")], table7.loc["ACSL", ("AP", "ours")])


def test_tables_5_to_7_state_their_claims_name_their_track_and_print_no_nan(oi_report):
    root, results = oi_report
    for result in results:
        claims = pd.read_csv(root / "reports" / f"{result.name}_claims.csv", index_col=0)
        assert len(claims) >= 1 and (claims["verdict"] == "pipeline check only (smoke)").all()
        assert (claims["profile"] == "oi-smoke").all()  # the track the numbers come from, not the report's profile
        assert (root / "reports" / f"{result.name}.png").is_file()
        executed = nbformat.read(root / "reports" / f"{result.name}.ipynb", as_version=4)
        for cell in executed.cells:
            for output in cell.get("outputs", []):
                prose = output.get("data", {}).get("text/markdown", "")
                assert not re.search(r"\bnan\b", prose, re.IGNORECASE), (result.name, prose)
    table5 = pd.read_csv(root / "reports" / "table5_openimages_backbones_claims.csv", index_col=0)
    assert table5["paper"].tolist()[:3] == pytest.approx([5.2, 5.3, 5.4])
    assert [c for c in table5.index if "same-budget" in c] == [
        f"ACSL is above the same-budget BCE stage 2 with {b}" for b in ("ResNet50-FPN", "ResNet101-FPN", "ResNet152-FPN")]
    table7 = pd.read_csv(root / "reports" / "table7_openimages_methods_claims.csv", index_col=0)
    assert "ACSL's Open Images AP is above the same-budget BCE stage 2's" in table7.index
    for name in ("table5_openimages_backbones", "table6_openimages_tail", "table7_openimages_methods"):  # the rule, printed
        executed = nbformat.read(root / "reports" / f"{name}.ipynb", as_version=4)
        assert "real Open Images Challenge 2019 shares" in json.dumps(executed.cells), name
