"""The index page of `acsl reproduce` states where its numbers come from (provenance, each notebook's real
start time, wall time, seeds and commit), and an executed notebook records the report folder as its
`output_dir` rather than the staging folder it wrote to. No notebook is executed here."""

from __future__ import annotations

import re

import nbformat
from papermill.parameterize import parameterize_notebook

from acsl.report import STAGED_COMMENT, _record_final_location, render_index

RUN = {"git_commit": "0123456789abcdef0123", "git_dirty": False, "python": "3.11.7", "torch": "2.14.1",
       "torchvision": "0.29.1", "faster_coco_eval": "1.8.0", "numpy": "2.4.6", "device": "cpu (2 cores)",
       "profile": "smoke", "seeds": [0, 1], "started": "2026-05-10 08:00:00 UTC", "wall_s": 150.0}


def _manifest():
    return {
        "table2_xi_ablation": {"title": "Table 2 — ACSL with different ξ", "profile": "smoke", "wall_s": 90.0,
                               "started": "2026-05-10 08:00:01 UTC", "seeds": [0], "files": ["table2_xi_ablation.csv"],
                               "commit": RUN["git_commit"], "dirty": True},
        "fig1_label_distribution": {"title": "Figure 1", "profile": "smoke", "wall_s": 60.0,  # from an older index
                                    "executed": "2026-01-01 00:00 UTC", "files": ["fig1_label_distribution.png"]},
        "_provenance": RUN,
    }


def test_the_index_shows_the_provenance_of_the_run():
    page = render_index(_manifest())
    assert "<h2>Provenance</h2>" in page
    for fragment in ("<code>0123456789abcdef0123</code> (clean tree)", "torch 2.14.1", "torchvision 0.29.1",
                     "faster-coco-eval 1.8.0", "numpy 2.4.6", "Python 3.11.7", "cpu (2 cores)", "<code>smoke</code>",
                     "<td>0, 1</td>", "started 2026-05-10 08:00:00 UTC, 2.5 min"):
        assert fragment in page, fragment


def test_each_row_has_its_start_wall_time_seeds_and_commit_and_the_total():
    page = render_index(_manifest())
    row = next(line for line in page.splitlines() if 'href="table2_xi_ablation.html"' in line)
    for fragment in ("<td>0</td>", "<td>2026-05-10 08:00:01 UTC</td>", "<td>90 s</td>", "<code>0123456789ab+</code>"):
        assert fragment in row, fragment
    old = next(line for line in page.splitlines() if 'href="fig1_label_distribution.html"' in line)
    assert "2026-01-01" not in old and old.count("<td>—</td>") == 2  # the old stamp was the index's, not a start
    assert "<b>2.5 min</b>" in page  # all notebooks: 90 s + 60 s


def test_an_index_without_provenance_says_so():
    manifest = _manifest()
    del manifest["_provenance"]
    assert "Provenance: not recorded" in render_index(manifest)


def test_the_executed_notebook_records_the_report_folder_and_its_seeds(tmp_path):
    staging, reports = tmp_path / "reports" / ".staging", tmp_path / "reports"
    staging.mkdir(parents=True)
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell('profile = "quick"\noutput_dir = "reports"', metadata={"tags": ["parameters"]}),
                      nbformat.v4.new_code_cell("show_provenance(profile, seeds=seed)", metadata={"tags": []})]
    notebook.cells[1].outputs = [nbformat.v4.new_output(
        "display_data", data={"text/markdown": "**Provenance**"}, metadata={"acsl_provenance": {**RUN, "seeds": [4]}})]
    notebook.metadata["papermill"] = {"input_path": "t.ipynb", "output_path": str(staging / "t.ipynb")}
    notebook = parameterize_notebook(notebook, {"profile": "smoke", "output_dir": str(staging)})  # as papermill does
    nbformat.write(notebook, staging / "t.ipynb")

    assert _record_final_location(staging / "t.ipynb", reports) == (4,)
    written = nbformat.read(staging / "t.ipynb", as_version=4)
    injected = next(c for c in written.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert injected.source.startswith(f"# {STAGED_COMMENT}\n")
    assert f'output_dir = "{reports}"' in injected.source and ".staging" not in injected.source
    assert 'profile = "smoke"' in injected.source
    assert written.metadata.papermill["parameters"] == {"profile": "smoke", "output_dir": str(reports)}
    assert written.metadata.papermill["output_path"] == str(reports / "t.ipynb")
    assert written.cells[-1].outputs[0]["metadata"]["acsl_provenance"]["seeds"] == [4]  # outputs kept


def test_the_front_page_lists_each_claim_with_its_interval_verdict_and_link():
    manifest = _manifest()
    manifest["table4_sota"] = {"title": "Table 4 — comparison with the state of the art", "profile": "quick", "wall_s": 5.0,
                               "seeds": [0, 1, 2], "files": [], "claims": [
                                   {"claim": "ACSL's APr is above EQL's", "paper": 6.72, "ours": 2.5, "low": 1.0,
                                    "high": 4.0, "seeds": 3, "verdict": "holds", "notebook": "table4_sota",
                                    "section": "Claims"}]}
    manifest["table2_xi_ablation"]["claims"] = [
        {"claim": "ACSL does not harm APf", "paper": 0.09, "ours": None, "low": None, "high": None, "seeds": 3,
         "verdict": "cannot be judged (undefined in this profile: no finite value for seed 0)",
         "notebook": "table2_xi_ablation", "section": "Claims"},
        {"claim": "ACSL is above the same-budget control", "paper": None, "ours": 1.0, "low": None, "high": None,
         "seeds": 1, "verdict": "cannot be judged (one seed, no interval)", "notebook": "table2_xi_ablation",
         "section": "Claims"}]
    page = render_index(manifest)
    claims = page[page.index("The paper's claims"):page.index("<h2>Provenance</h2>")]
    rows = [line for line in claims.split("<tr>")[2:]]
    assert [r.split("</td>")[0].removeprefix("<td>") for r in rows] == [
        "ACSL does not harm APf", "ACSL is above the same-budget control", "ACSL&#x27;s APr is above EQL&#x27;s"]  # Table 2 first
    assert "<td>+6.72</td><td>+2.50 [+1.00, +4.00]</td><td>3</td><td>holds</td>" in rows[2]
    assert 'href="table4_sota.html#Claims"' in rows[2] and ">Table 4<" in rows[2]
    assert "<td>+0.09</td><td>undefined</td>" in rows[0] and "<td>—</td><td>+1.00</td>" in rows[1]
    for mark in ("<b>—</b> the paper gives no number", "<b>undefined</b>", "<b>not run</b>"):
        assert mark in claims  # the three empty values, explained once
    assert not re.search(r"\bnan\b", page, re.IGNORECASE)  # an empty value is named, never printed as NaN


def test_an_index_before_any_claim_says_so():
    assert "No notebook with claims has been executed yet." in render_index(_manifest())
