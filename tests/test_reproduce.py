"""`acsl reproduce`: the Table 2 notebook executes under papermill in the `smoke` profile and publishes
notebook, HTML, CSV and index; a failing notebook names itself and its cell and leaves the previous
report in place."""

from __future__ import annotations

import json
import os
import re

import nbformat
import pandas as pd
import pytest

from acsl.cli import main
from acsl.notebook import repository_root
from acsl.report import NOTEBOOKS_DIR, NotebookFailed, available_notebooks, default_jobs, execution_order, kernel_threads, reproduce


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("reproduce")
    results = reproduce(profile="smoke", only=["table2_xi_ablation", "table3_backbones", "fig4_per_class_ap",
                                               "table1_group_partition", "table4_sota", "beyond_after_acsl"],
                        reports_dir=root / "reports", run_store=root / "runs", data_root=root / "data", progress=False)
    return root, results


def test_table2_notebook_executes_in_smoke_and_publishes_everything(smoke_report):
    root, results = smoke_report
    reports = root / "reports"
    assert [r.name for r in results] == ["table2_xi_ablation", "table3_backbones", "fig4_per_class_ap",
                                         "table1_group_partition", "table4_sota", "beyond_after_acsl"]
    for name in ("table2_xi_ablation.ipynb", "table2_xi_ablation.html", "table2_xi_ablation.csv", "index.html"):
        assert (reports / name).is_file(), name
    assert not (reports / ".staging").exists()
    index = (reports / "index.html").read_text()
    assert 'href="table2_xi_ablation.html"' in index and "Table 2" in index
    # the time of each stage, summed over the run store, pretrained start included
    assert "Time by stage" in index and "pretrained start (stage 0)" in index and "all notebooks" in index
    manifest = json.loads((reports / "manifest.json").read_text())
    assert manifest["_stage_times"]["pretrained start (stage 0)"] > 0 and manifest["_stage_times"]["stage 1"] > 0


def test_table2_csv_has_every_row_with_ours_beside_the_papers(smoke_report):
    root, _ = smoke_report
    table = pd.read_csv(root / "reports" / "table2_xi_ablation.csv", header=[0, 1], index_col=[0, 1])
    methods = [m for m, _ in table.index]
    # the same-budget control; the exact stage 2; the convergence row (the 4x baseline, every seed)
    ours_only = ["softmax CE (stage 2)", "ACSL (exact stage 2)", "baseline (4x)"]
    assert sorted(methods) == sorted(["baseline (1x)", "baseline (2x)"] + ["ACSL"] * 6 + ours_only)
    assert methods[:2] == ["baseline (1x)", "baseline (2x)"]
    assert [float(x) for m, x in table.index if m == "ACSL"] == [0.01, 0.1, 0.3, 0.5, 0.7, 0.9]
    in_paper = [m not in ours_only for m in methods]
    for metric in ("mAP", "APr", "APc", "APf"):
        assert table[(metric, "paper")][in_paper].notna().all()
        assert table[(metric, "paper")][[not p for p in in_paper]].isna().all()
    # ours comes from the runs: each row's numbers equal the run store's metrics.json
    stored = {}
    for path in (root / "runs").glob("*/metrics.json"):
        record = json.loads(path.read_text())
        spec = record["spec"]
        if spec["detector"]:  # Table 3's other detectors and backbones share the store
            continue
        if spec["sampler"] != "uniform" or spec["classifier"] != "stage1":  # Tables 1 and 4 share it too
            continue
        if spec["loss"] == "acsl" and spec["stage"] == 2:
            xi = dict(spec["loss_options"])["xi"]
            key = ("ACSL", xi) if spec["cached"] else ("ACSL (exact stage 2)", xi)
        elif spec["loss"] == "softmax_ce":
            key = ("softmax CE (stage 2)", None) if spec["stage"] == 2 else (f"baseline ({spec['schedule']}x)", None)
        else:
            continue
        stored[key] = record["metrics"]["AP"]
    assert len(stored) == 11
    for (method, xi), value in table[("mAP", "ours")].items():
        key = (method, None if pd.isna(xi) else float(xi))
        assert value == pytest.approx(round(stored[key], 2), abs=0.006)
    # the summary reads the convergence row: the baseline's mAP at 1x / 2x / 4x, from those same runs
    page = (root / "reports" / "table2_xi_ablation.html").read_text()
    curve = " / ".join(f"{stored[(f'baseline ({n}x)', None)]:.2f}" for n in (1, 2, 4))
    assert f"at 1x / 2x / 4x is {curve}" in page


def test_table2_checks_the_benchmark_against_the_paper_and_judges_nothing_on_smoke(smoke_report):
    root, _ = smoke_report
    fidelity = pd.read_csv(root / "reports" / "table2_xi_ablation_fidelity.csv", index_col=0)
    assert len(fidelity) == 5 and fidelity["ours"].notna().any()
    assert set(fidelity["verdict"]) == {"pipeline check only (smoke)"}
    claims = pd.read_csv(root / "reports" / "table2_xi_ablation_claims.csv", index_col=0)
    assert len(claims) == 4 and set(claims["verdict"]) == {"pipeline check only (smoke)"}
    assert claims["paper"].round(2).tolist() == [14.34, 0.28, 0.09, 4.08]  # the paper's own differences
    table = pd.read_csv(root / "reports" / "table2_xi_ablation.csv", header=[0, 1], index_col=[0, 1])
    rows = {(m, None if pd.isna(x) else float(x)): row for (m, x), row in table.iterrows()}
    gain = rows[("ACSL", 0.7)][("APr", "ours")] - rows[("baseline (1x)", None)][("APr", "ours")]
    assert claims.iloc[0]["ours"] == pytest.approx(gain, abs=0.01)
    # the front page lists every notebook's claims, each linked to the section that computes it
    index = (root / "reports" / "index.html").read_text()
    assert "The paper&#x27;s claims" in index or "The paper's claims" in index
    assert 'href="table2_xi_ablation.html#Claims"' in index and 'href="table4_sota.html#Claims"' in index
    assert not re.search(r"\bnan\b", index, re.IGNORECASE)  # an empty value is named, never printed as NaN


def test_table3_has_every_detector_and_backbone_with_ours_beside_the_papers(smoke_report):
    root, _ = smoke_report
    table = pd.read_csv(root / "reports" / "table3_backbones.csv", header=[0, 1], index_col=[0, 1, 2])
    pairs = [("Faster R-CNN", "ResNet-50 (Table 2)"), ("Faster R-CNN", "ResNet-101"), ("Faster R-CNN", "ResNeXt-101 64x4d"),
             ("Cascade R-CNN", "ResNet-101"), ("Cascade R-CNN", "ResNeXt-101 64x4d")]
    assert list(table.index) == [(d, b, m) for d, b in pairs for m in ("baseline", "ACSL")]
    assert table[("mAP", "ours")].notna().all()
    assert table.loc[("Cascade R-CNN", "ResNeXt-101 64x4d", "ACSL"), ("mAP", "paper")] == 31.47
    # The R50 rows are Table 2's runs: the same numbers, not retrained.
    table2 = pd.read_csv(root / "reports" / "table2_xi_ablation.csv", header=[0, 1], index_col=[0, 1])
    assert table.loc[("Faster R-CNN", "ResNet-50 (Table 2)", "baseline"), ("mAP", "ours")] == \
        table2.xs("baseline (1x)", level=0)[("mAP", "ours")].iloc[0]


def test_table4_has_every_method_with_ours_beside_the_papers(smoke_report):
    root, _ = smoke_report
    table = pd.read_csv(root / "reports" / "table4_sota.csv", header=[0, 1], index_col=0)
    paper_rows = ["Focal Loss", "CBL", "LDAM", "RFS", "LWS", "SimCal", "EQL", "BAGS", "ACSL"]
    assert list(table.index[:len(paper_rows)]) == paper_rows  # the paper's order, then the methods beyond it
    assert {"Softmax CE", "cRT", "EQLv2", "Seesaw", "Federated loss"} <= set(table.index)
    columns = ("mAP", "APr", "APc", "APf", "AP50", "AP75", "APs", "APm", "APl")
    assert [c for c, _ in table.columns[:-1][::3]] == list(columns)
    assert [source for _, source in table.columns[:3]] == ["ours", "± 95% CI", "paper"]
    assert table.columns[-1][0] == "profile" and (table.iloc[:, -1] == "smoke").all()  # every CSV names its profile
    run = table.drop(index="SimCal")
    assert run[("mAP", "ours")].notna().all() and pd.isna(table.loc["SimCal", ("mAP", "ours")])  # "not run"
    assert table.loc["ACSL", ("APr", "paper")] == 18.64 and pd.isna(table.loc["Seesaw", ("mAP", "paper")])
    # ACSL and the baseline are Table 2's runs (ξ = 0.7 and the 1x baseline), not retrained.
    table2 = pd.read_csv(root / "reports" / "table2_xi_ablation.csv", header=[0, 1], index_col=[0, 1])
    acsl_07 = [i for i, (method, xi) in enumerate(table2.index) if method == "ACSL" and float(xi) == 0.7]
    assert table.loc["ACSL", ("mAP", "ours")] == table2[("mAP", "ours")].iloc[acsl_07[0]]
    assert table.loc["Softmax CE", ("mAP", "ours")] == table2.xs("baseline (1x)", level=0)[("mAP", "ours")].iloc[0]
    # the claims: paired differences with the paper's value; in smoke no verdict, only a pipeline check
    claims = pd.read_csv(root / "reports" / "table4_sota_claims.csv", index_col=0)
    others = [m for m in table.index if m not in ("ACSL", "Softmax CE", "EQL", "BAGS", "SimCal")]  # SimCal: not run
    assert list(claims.index) == ["ACSL's APr is above EQL's", "ACSL's APr is above BAGS's"] + [
        f"ACSL's APr is above {m}'s" for m in others] + [
        "ACSL does not harm the frequent classes: APf within 1 point of the softmax baseline's"]
    assert claims["paper"].round(2).tolist()[:2] == [6.72, 0.99] and claims["paper"].round(2).iloc[-1] == 0.09
    assert claims.loc["ACSL's APr is above Seesaw's", "paper"] != claims.loc["ACSL's APr is above Seesaw's", "paper"]  # —
    assert (claims["verdict"] == "pipeline check only (smoke)").all() and (claims["seeds"] == 1).all()
    assert claims.loc["ACSL's APr is above EQL's", "ours"] == pytest.approx(
        table.loc["ACSL", ("APr", "ours")] - table.loc["EQL", ("APr", "ours")], abs=0.01)


def test_beyond_the_paper_compares_the_later_methods_with_acsl_on_table4s_runs(smoke_report):
    root, _ = smoke_report
    reports = root / "reports"
    table = pd.read_csv(reports / "beyond_after_acsl.csv", header=[0, 1], index_col=0)
    assert list(table.index) == ["Softmax CE", "ACSL", "EQLv2", "Seesaw", "ECM", "GOL", "DropLoss", "NorCal"]
    columns = ("mAP", "APr", "APc", "APf", "AP50", "AP75", "APs", "APm", "APl")
    assert list(dict.fromkeys(c for c, _ in table.columns[:-1])) == list(columns)
    assert [s for c, s in table.columns if c == "APr"] == ["ours", "± 95% CI", "published"]
    assert [s for c, s in table.columns if c == "AP50"] == ["ours", "± 95% CI"]
    assert table[("mAP", "ours")].notna().all()
    # published numbers are the authors' (acsl.published), never ours; none where a repository gives none
    assert table.loc["GOL", ("APr", "published")] == 21.4 and table.loc["ECM", ("mAP", "published")] == 26.9
    assert table.loc["ACSL", ("APr", "published")] == 18.64
    assert table[("mAP", "published")][["Softmax CE", "DropLoss", "NorCal"]].isna().all()
    # the softmax baseline, ACSL, EQLv2 and Seesaw are Table 4's runs, not retrained
    table4 = pd.read_csv(reports / "table4_sota.csv", header=[0, 1], index_col=0)
    for method in ("Softmax CE", "ACSL", "EQLv2", "Seesaw"):
        assert table.loc[method, ("mAP", "ours")] == table4.loc[method, ("mAP", "ours")], method
    # NorCal trained nothing: its run holds metrics only, evaluated on the softmax baseline's checkpoint
    norcal = [p.parent for p in (root / "runs").glob("smoke_stage1_norcal_*seed0*/metrics.json")]
    assert len(norcal) == 1 and not (norcal[0] / "checkpoint.pt").exists()
    assert json.loads((norcal[0] / "metrics.json").read_text())["spec"]["loss"] == "norcal"
    # ... with its calibrated scores (γ = 0.8): the same detector, other numbers than the plain softmax's
    assert (table.loc["NorCal", [(c, "ours") for c in columns]] != table.loc["Softmax CE", [(c, "ours") for c in columns]]).any()
    claims = pd.read_csv(reports / "beyond_after_acsl_claims.csv", index_col=0)
    later = ["EQLv2", "Seesaw", "ECM", "GOL", "DropLoss", "NorCal"]
    assert list(claims.index) == [f"{m} above ACSL on APr (beyond the paper)" for m in later] + [
        "ACSL above the focal loss on APr, one-stage (beyond the paper)", "EFL above ACSL on APr, one-stage (beyond the paper)"]
    assert claims["paper"].isna().all() and (claims["verdict"] == "pipeline check only (smoke)").all()
    assert claims.loc["ECM above ACSL on APr (beyond the paper)", "ours"] == pytest.approx(
        table.loc["ECM", ("APr", "ours")] - table.loc["ACSL", ("APr", "ours")], abs=0.01)
    # one-stage: RetinaNet from its own start (trained with the focal loss), fine-tuned with each dense loss
    one = pd.read_csv(reports / "beyond_after_acsl_one_stage.csv", header=[0, 1], index_col=0)
    assert list(one.index) == ["Focal loss (RetinaNet)", "EFL (RetinaNet)", "ACSL (RetinaNet)"]
    assert one[("mAP", "ours")].notna().all() and one.loc["EFL (RetinaNet)", ("APr", "published")] == 20.2
    assert claims.loc["EFL above ACSL on APr, one-stage (beyond the paper)", "ours"] == pytest.approx(
        one.loc["EFL (RetinaNet)", ("APr", "ours")] - one.loc["ACSL (RetinaNet)", ("APr", "ours")], abs=0.01)
    starts = {p.parent.name for p in (root / "runs").glob("smoke_retinanet_stage0_dense_focal_*/checkpoint.pt")}
    assert len(starts) == 1  # one RetinaNet start, shared by the three losses
    # the index lists it after the paper's notebooks and says that it goes beyond the paper
    index = (reports / "index.html").read_text()
    assert index.index('href="beyond_after_acsl.html"') > index.index('href="table4_sota.html"')
    assert "beyond the paper: methods published after it" in index
    assert (reports / "beyond_after_acsl.png").is_file() and (reports / "beyond_after_acsl_groups.png").is_file()


def test_table1_moves_the_papers_dividing_lines_to_the_profile(smoke_report):
    root, _ = smoke_report
    mapping = pd.read_csv(root / "reports" / "table1_group_partition_lines.csv", index_col=0)
    assert list(mapping.index) == [5, 50, 500, 5000] and mapping["our line"].is_monotonic_increasing
    table = pd.read_csv(root / "reports" / "table1_group_partition.csv", header=[0, 1], index_col=0)
    assert len(table) == 4 and table[("mAP", "ours")].notna().all()
    assert table[("mAP", "paper")].tolist() == [22.74, 25.30, 25.66, 23.89]
    two_groups = [p for p in (root / "runs").glob("smoke_stage2_bags_bins0,*") if re.search(r"bins0,\d+_1x", p.name)]
    assert len(two_groups) == len(set(mapping["our line"]))  # Table 4's BAGS (four groups) shares the store


def test_fig4_compares_the_same_runs_per_class(smoke_report):
    root, _ = smoke_report
    per_class = pd.read_csv(root / "reports" / "fig4_per_class_ap.csv", index_col=0)
    assert (root / "reports" / "fig4_per_class_ap.png").is_file()
    assert set(per_class["frequency"]) <= {"r", "c", "f"} and len(per_class) > 0
    assert ((per_class["ACSL"] - per_class["baseline"]).round(3) - per_class["ACSL − baseline"]).abs().max() < 0.002
    # The baseline column is Table 2's baseline run, class by class.
    (baseline_dir,) = [p.parent for p in (root / "runs").glob("smoke_stage1_softmax_ce_1x_seed0-*/metrics.json")]
    stored = json.loads((baseline_dir / "metrics.json").read_text())["per_class_AP"]
    for category_id, row in per_class.iterrows():
        assert row["baseline"] == pytest.approx(stored[str(category_id)], abs=0.001)


def test_rendered_pages_hide_the_code_and_print_no_nan_and_no_warning(smoke_report):
    root, results = smoke_report
    for result in results:
        page = (root / "reports" / f"{result.name}.html").read_text()
        assert "store.metrics(" not in page and "import pandas" not in page  # the code stays in the .ipynb
        assert "Warning" not in page, result.name  # e.g. tqdm's IProgress warning
        executed = nbformat.read(root / "reports" / f"{result.name}.ipynb", as_version=4)
        assert any("store.metrics(" in c.source for c in executed.cells if c.cell_type == "code")
        for cell in executed.cells:
            for output in cell.get("outputs", []):
                prose = output.get("data", {}).get("text/markdown", "")
                assert not re.search(r"\bnan\b", prose, re.IGNORECASE), (result.name, prose)


def test_executed_notebook_keeps_the_parameters_and_the_plot(smoke_report):
    root, _ = smoke_report
    executed = nbformat.read(root / "reports" / "table2_xi_ablation.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the ξ plot is missing"


def test_a_second_run_reuses_the_run_store(smoke_report):
    root, first = smoke_report
    stored = {path: path.stat().st_mtime_ns for path in (root / "runs").glob("*/metrics.json")}
    again = reproduce(profile="smoke", only=["table2_xi_ablation", "table3_backbones"], reports_dir=root / "reports",
                      run_store=root / "runs", data_root=root / "data", progress=False)
    assert [r.name for r in again] == ["table2_xi_ablation", "table3_backbones"]
    # nothing was trained or evaluated again: the same records, untouched, and no new run
    assert {path: path.stat().st_mtime_ns for path in (root / "runs").glob("*/metrics.json")} == stored


def test_a_notebook_run_elsewhere_resolves_relative_paths_against_the_repository(tmp_path):
    """papermill from another working directory, with paths relative to the repository root: the notebook
    writes its data and figure there, nothing into its working directory, and opens with its provenance."""
    import papermill

    elsewhere = tmp_path / "kernel-cwd"
    elsewhere.mkdir()
    parameters = {"profile": "smoke", "data_root": os.path.relpath(tmp_path / "data", repository_root()),
                  "output_dir": os.path.relpath(tmp_path / "reports", repository_root())}
    papermill.execute_notebook(str(NOTEBOOKS_DIR / "fig1_label_distribution.ipynb"), str(tmp_path / "fig1.ipynb"),
                               parameters=parameters, kernel_name="python3", progress_bar=False, cwd=str(elsewhere))
    assert (tmp_path / "reports" / "fig1_label_distribution.png").is_file()
    assert list((tmp_path / "data").rglob("*.json")), "the smoke benchmark was not generated into data_root"
    assert not any(elsewhere.iterdir())
    executed = nbformat.read(tmp_path / "fig1.ipynb", as_version=4)
    code = [c for c in executed.cells if c.cell_type == "code"]
    first = code[[i for i, c in enumerate(code) if "injected-parameters" in c.metadata.get("tags", [])][0] + 1]
    (shown,) = [o for o in first.outputs if "acsl_provenance" in o.get("metadata", {})]
    assert shown["data"]["text/markdown"].startswith("**Provenance**")
    assert shown["metadata"]["acsl_provenance"]["profile"] == "smoke"
    assert shown["metadata"]["acsl_provenance"]["seeds"] == [0]


def _failing_notebook(directory):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "quick"\noutput_dir = "."', metadata={"tags": ["parameters"]})
    nb.cells = [nbformat.v4.new_markdown_cell("# Broken"), params, nbformat.v4.new_code_cell("raise ValueError('boom')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    directory.mkdir()
    nbformat.write(nb, directory / "broken.ipynb")


@pytest.mark.parametrize("profile", ["smoke", "lvis-v0.5"])  # lvis-v0.5 without downloads: shipped statistics
def test_figure_notebooks_execute_and_save_their_figures(tmp_path, profile):
    results = reproduce(profile=profile,
                        only=["fig1_label_distribution", "fig2_lvis_vs_openimages", "fig3_acsl_illustration"],
                        reports_dir=tmp_path / "reports", run_store=tmp_path / "runs", data_root=tmp_path / "data",
                        progress=False)
    names = ["fig1_label_distribution", "fig2_lvis_vs_openimages", "fig3_acsl_illustration"]
    assert [r.name for r in results] == names
    index = (tmp_path / "reports" / "index.html").read_text()
    for name in names:
        png = tmp_path / "reports" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f'href="{name}.png"' in index
        assert "Warning" not in (tmp_path / "reports" / f"{name}.html").read_text()  # e.g. tqdm's IProgress warning
    # the index names the code, software and seeds behind the figures, and when each notebook started
    assert "<h2>Provenance</h2>" in index and f"<code>{profile}</code>" in index
    assert [r.seeds for r in results] == [(0,), (0,), ()] and all(r.started in index for r in results)
    manifest = json.loads((tmp_path / "reports" / "manifest.json").read_text())
    assert manifest["_provenance"]["seeds"] == [0] and manifest["fig1_label_distribution"]["seeds"] == [0]
    # Figure 1's training-split statistics beside LVIS's: ours only where the profile trains on a split here
    assert "fig1_label_distribution_statistics.csv" in manifest["fig1_label_distribution"]["files"]
    statistics = pd.read_csv(tmp_path / "reports" / "fig1_label_distribution_statistics.csv", index_col="statistic")
    assert list(statistics.columns) == (["ours"] if profile == "smoke" else []) + ["LVIS v0.5", "LVIS v1", "profile"]
    assert float(statistics.loc["rare annotations (%)", "LVIS v0.5"]) == 0.85
    assert float(statistics.loc["annotations per image", "LVIS v1"]) == 12.68
    assert manifest["_provenance"]["jobs"] == min(default_jobs("cpu"), len(names))  # side by side on a CPU
    assert manifest["_provenance"]["threads_per_kernel"] == 1
    executed = nbformat.read(tmp_path / "reports" / "fig1_label_distribution.ipynb", as_version=4)
    assert executed.metadata.papermill["parameters"]["profile"] == profile
    # each executed notebook records where its files are now, not the staging folder it wrote them to
    executed = nbformat.read(tmp_path / "reports" / "fig3_acsl_illustration.ipynb", as_version=4)
    assert executed.metadata.papermill["parameters"]["output_dir"] == str((tmp_path / "reports").resolve())
    assert ".staging" not in json.dumps(executed.metadata.papermill)


def test_a_failing_notebook_is_named_with_its_cell_and_the_old_report_stays(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "index.html").write_text("previous report")
    _failing_notebook(tmp_path / "nbs")
    with pytest.raises(NotebookFailed, match=r"broken.ipynb failed in cell 3 .*ValueError: boom"):
        reproduce(profile="smoke", reports_dir=reports, run_store=tmp_path / "runs", data_root=tmp_path / "data",
                  notebooks_dir=tmp_path / "nbs", progress=False)
    assert (reports / "index.html").read_text() == "previous report"
    assert (reports / "failed" / "broken.ipynb").is_file()
    assert not (reports / "broken.html").exists()


def test_cli_exits_nonzero_with_a_clear_message(tmp_path, capsys):
    _failing_notebook(tmp_path / "nbs")
    assert main(["eval", "--loss", "magic", "--run-store", str(tmp_path / "runs")]) == 1
    assert "unknown loss 'magic'" in capsys.readouterr().err
    assert main(["reproduce", "--only", "table9", "--reports", str(tmp_path / "r")]) == 1
    assert "unknown notebook(s) ['table9']" in capsys.readouterr().err
    assert main(["data", "check", "pascal", "--root", str(tmp_path)]) == 1
    assert "unknown dataset 'pascal'" in capsys.readouterr().err
    assert main(["data", "check", "openimages", "--root", str(tmp_path)]) == 1
    assert "acsl data download openimages --root" in capsys.readouterr().err  # says how to fetch the files
    assert main(["data", "check", "lvis-v1", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out  # grouped by kind: the file in the heading, the problem below it
    assert "lvis_v1_val.json: 1 problem of 1 kind" in out and "annotation file not found" in out
    with pytest.raises(SystemExit):
        main(["reproduce", "--profile", "huge"])


def test_run_store_that_is_not_writable_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["eval", "--run-store", str(blocker / "runs")]) == 1
    assert "run store directory" in capsys.readouterr().err


def test_committed_notebooks_have_no_outputs_and_a_parameters_cell():
    for path in available_notebooks(NOTEBOOKS_DIR):
        notebook = nbformat.read(path, as_version=4)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), path.name
        assert any("parameters" in c.metadata.get("tags", []) for c in code), path.name


def test_parallel_jobs_start_the_longest_notebooks_first(tmp_path):
    notebooks = [NOTEBOOKS_DIR / f"{name}.ipynb" for name in ("fig1_label_distribution", "table2_xi_ablation",
                                                              "table3_backbones", "table6_openimages_tail")]
    assert [p.stem for p in execution_order(notebooks)] == [
        "table2_xi_ablation", "table3_backbones", "fig1_label_distribution", "table6_openimages_tail"]
    manifest = tmp_path / "manifest.json"  # the last report's own wall times take precedence
    manifest.write_text(json.dumps({"fig1_label_distribution": {"wall_s": 5000.0}, "_provenance": {}}))
    assert execution_order(notebooks, manifest)[0].stem == "fig1_label_distribution"
    manifest.write_text("{not json")
    assert execution_order(notebooks, manifest)[0].stem == "table2_xi_ablation"
    assert default_jobs("cuda") == 1 and default_jobs("cpu") == max(1, os.cpu_count() or 1)
    assert kernel_threads("cpu") == 1 and kernel_threads("cuda") is None  # the numbers do not depend on --jobs
    with pytest.raises(ValueError, match="jobs must be >= 1, got 0"):
        reproduce(profile="smoke", only=["fig3_acsl_illustration"], reports_dir=tmp_path / "r", jobs=0)
