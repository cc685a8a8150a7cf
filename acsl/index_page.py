"""The report's front page, ``reports/index.html``: the paper's claims with our verdicts (docs/ARCHITECTURE.md,
"The claims page"), the provenance of the last ``acsl reproduce``, and one row per notebook with its files,
profile, seeds, start time, wall time and commit, then the time by stage. ``acsl.report`` writes it from
the report's ``manifest.json``."""

from __future__ import annotations

import html
from typing import Any

from .claims import format_difference, format_paper
from .provenance import UNKNOWN, cpu_line


def _provenance_html(run: dict[str, Any] | None) -> str:
    """The index's provenance block: the code, software, device and CPU (model, pinned kernels, the level
    torch ran in the kernels; docs/ARCHITECTURE.md, "The same numbers on any machine") of the last
    ``acsl reproduce``, with a warning above the table when the kernels did not run at the pinned level."""
    if not run:
        return "<p>Provenance: not recorded (this index predates it).</p>"
    commit = run.get("git_commit", UNKNOWN)
    if commit == UNKNOWN:
        code = "unknown (not a git checkout)"
    else:
        state = {True: "with uncommitted changes", False: "clean tree"}.get(run.get("git_dirty"), "tree state unknown")
        code = f"<code>{html.escape(commit)}</code> ({state})"
    software = " · ".join(f"{name} {html.escape(str(run.get(key, UNKNOWN)))}" for key, name in
                          (("python", "Python"), ("torch", "torch"), ("torchvision", "torchvision"),
                           ("faster_coco_eval", "faster-coco-eval"), ("numpy", "numpy")))
    seeds = ", ".join(map(str, run.get("seeds", []))) or "none"
    items = [("commit", code), ("software", software), ("device", html.escape(str(run.get("device", UNKNOWN)))),
             ("profile", f"<code>{html.escape(str(run.get('profile', UNKNOWN)))}</code>"), ("seeds", seeds),
             ("run", f"started {html.escape(str(run.get('started', UNKNOWN)))}, "
                     f"{run.get('wall_s', float('nan')) / 60:.1f} min for the notebooks it executed"
                     + (f", {run['jobs']} at a time" if run.get("jobs", 1) > 1 else "")
                     + (f", {run['threads_per_kernel']} thread per kernel" if run.get("threads_per_kernel") else "")),
             ("CPU", html.escape(cpu_line(run).removeprefix("CPU: ")))]
    warning = (f"<p><b>Warning: {html.escape(run['cpu_note'])}.</b></p>" if run.get("cpu_note") else "")
    return ("<h2>Provenance</h2>" + warning + "<p>The code and software of the last <code>acsl reproduce</code>; "
            "a notebook published by an earlier one names its own commit below.</p><table><tbody>"
            + "".join(f"<tr><th>{key}</th><td>{value}</td></tr>" for key, value in items) + "</tbody></table>")


#: The claims page's order: the paper's tables in the order its experiments argue.
CLAIMS_ORDER = ("table2_xi_ablation", "table4_sota", "table3_backbones", "table1_group_partition",
                "table5_openimages_backbones", "table7_openimages_methods", "table6_openimages_tail", "fig4_per_class_ap",
                "beyond_after_acsl")


def _claims_html(notebooks: dict[str, dict[str, Any]]) -> str:
    """The front page's claims: one row per claim the notebooks saved (``acsl.claims``), with the paper's
    value, ours with its 95 % interval, the verdict and a link to the notebook section behind it."""
    names = [n for n in CLAIMS_ORDER if n in notebooks] + sorted(n for n in notebooks if n not in CLAIMS_ORDER)
    rows = []
    for name in names:
        entry = notebooks[name]
        for claim in entry.get("claims", []):
            paper_text = format_paper(claim.get("paper"))
            ours = format_difference(claim.get("ours"), claim.get("low"), claim.get("high"))
            link = f"{name}.html#{claim.get('section') or ''}"
            rows.append(f"<tr><td>{html.escape(str(claim['claim']))}</td><td>{paper_text}</td><td>{html.escape(ours)}</td>"
                        f"<td>{int(claim.get('seeds') or 0)}</td><td>{html.escape(str(claim['verdict']))}</td>"
                        f"<td><a href=\"{html.escape(link)}\">{html.escape(entry['title'].split(' — ')[0])}</a></td></tr>")
    if not rows:
        return "<h2>The paper's claims</h2><p>No notebook with claims has been executed yet.</p>"
    return ("<h2>The paper's claims</h2><p>Each claim as a difference between two of our runs at the same seeds "
            "(what should be above zero, below zero or within a tolerance); <i>ours</i> is the mean difference over the "
            "seeds with its 95 % Student t interval in brackets. Rows marked <i>beyond the paper</i> are not the paper's: "
            "they compare ACSL with methods published after it. The verdict is <i>holds</i> when the whole interval lies "
            "on the paper's side, <i>does not hold</i> when it lies on the other side, and <i>cannot be judged</i> "
            "otherwise: the interval crosses the bound, one seed gives no interval, or the profile cannot define the "
            "metric. In <code>smoke</code> every verdict reads <i>pipeline check only</i>. Marks: <b>—</b> the paper "
            "gives no number; <b>undefined</b> this profile has no ground truth for it (no class of that group, no "
            "object of that size); <b>not run</b> no run of ours exists for it.</p>"
            "<table><thead><tr><th>claim</th><th>paper</th><th>ours [95% CI]</th><th>seeds</th><th>verdict</th>"
            "<th>where</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


#: Where in the paper each notebook's table or figure is discussed.
PAPER_SECTIONS = {"fig1_label_distribution": "§1, Figure 1", "fig2_lvis_vs_openimages": "§3.1, Figure 2",
                  "fig3_acsl_illustration": "§3.2, Figure 3", "fig4_per_class_ap": "§4.5, Figure 4",
                  "table1_group_partition": "§3.1, Table 1", "table2_xi_ablation": "§4.3, Table 2",
                  "table3_backbones": "§4.4, Table 3", "table4_sota": "§4.6, Table 4",
                  "table5_openimages_backbones": "§5, Table 5", "table6_openimages_tail": "§5, Table 6",
                  "table7_openimages_methods": "§5, Table 7"}
#: Notebooks that go beyond the paper: listed after the paper's, their row saying so.
BEYOND_THE_PAPER = {"beyond_after_acsl": "beyond the paper: methods published after it"}


def _notebook_row(name: str, entry: dict[str, Any]) -> str:
    links = " · ".join(f'<a href="{html.escape(f)}">{html.escape(f.rsplit(".", 1)[-1])}</a>' for f in entry["files"])
    commit = entry.get("commit")
    commit = "—" if commit is None else "unknown" if commit == UNKNOWN else commit[:12] + ("+" if entry.get("dirty") is True else "")
    seeds = ", ".join(map(str, entry["seeds"])) if "seeds" in entry else "—"
    return (f"<tr><td><a href=\"{html.escape(name)}.html\">{html.escape(entry['title'])}</a></td>"
            f"<td>{html.escape(PAPER_SECTIONS.get(name) or BEYOND_THE_PAPER.get(name, '—'))}</td><td>{links}</td><td>{html.escape(entry['profile'])}</td><td>{html.escape(seeds or 'none')}</td>"
            f"<td>{html.escape(entry.get('started', '—'))}</td><td>{entry['wall_s']:.0f} s</td>"
            f"<td><code>{html.escape(commit)}</code></td></tr>")


def render_index(manifest: dict) -> str:
    """The report's index page: the provenance of the last run, then one row per notebook with links to
    its HTML, notebook and CSV files, its profile, seeds, real start time, wall time and commit."""
    stages = manifest.get("_stage_times", {})
    notebooks = {name: entry for name, entry in manifest.items() if not name.startswith("_")}
    rows = [_notebook_row(name, notebooks[name]) for name in sorted(notebooks, key=lambda n: (n in BEYOND_THE_PAPER, n))]
    total = sum(entry["wall_s"] for entry in notebooks.values())
    stage_rows = "".join(f"<tr><td>{html.escape(stage)}</td><td>{seconds / 60:.1f} min</td></tr>"
                         for stage, seconds in stages.items())
    stage_table = ("<h2>Time by stage</h2><p>Summed over the runs in the run store (from an empty store: what this "
                   f"report trained and evaluated).</p><table><tbody>{stage_rows}</tbody></table>") if stages else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>acsl — reproduced tables and figures</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.4em;text-align:left}}</style>
</head><body>
<h1>Adaptive Class Suppression Loss for Long-Tail Object Detection — reproduced</h1>
<p>Wang et al., CVPR 2021. Each page is an executed notebook: our runs beside the paper's numbers.</p>
{_claims_html(notebooks)}
{_provenance_html(manifest.get("_provenance"))}
<h2>Notebooks</h2>
<p>Each page shows the outputs and the prose; the executed <code>.ipynb</code> beside it keeps the code.</p>
<table><thead><tr><th>table / figure</th><th>paper</th><th>files</th><th>profile</th><th>seeds</th><th>started</th><th>wall time</th>
<th>commit (+: uncommitted changes)</th></tr></thead>
<tbody>
{chr(10).join(rows)}
<tr><td><b>all notebooks (summed; run side by side they take less: see Provenance)</b></td><td></td><td></td><td></td><td></td><td></td><td><b>{total / 60:.1f} min</b></td><td></td></tr>
</tbody></table>
{stage_table}
</body></html>
"""
