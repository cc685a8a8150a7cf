"""The same numbers on any machine (docs/ARCHITECTURE.md): the pinned CPU kernels reach every process
`acsl reproduce` trains in (its kernels, torchrun's ranks), the provenance names the CPU and the level torch
ran, and `acsl reference update` / `acsl reference verify` / `acsl reproduce --verify` compare a report
with a profile's reference cell for cell. Nothing is trained here."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from acsl import cpu_kernels, report
from acsl.cli import launch, main
from acsl.cpu_kernels import (SWITCH, VARIABLES, capability_note, kernel_pins, numpy_features_above_avx2, overridden,
                              pinned_environment, process_environment)
from acsl.index_page import render_index
from acsl.provenance import provenance, provenance_markdown
from acsl.reference import PROVENANCE_NAME, verify, write_reference

AVX2_FLAGS = frozenset({"sse2", "avx", "avx2", "fma"})
x86_with_avx2 = pytest.mark.skipif(platform.machine().lower() not in cpu_kernels.X86
                                   or not {"avx2", "fma"} <= (cpu_kernels.cpu_flags() or AVX2_FLAGS),
                                   reason="the pins are AVX2 on x86-64 CPUs that have it")


# --- the pinned environment ------------------------------------------------------------------------------------

def test_x86_with_avx2_pins_every_library_at_avx2():
    pins = pinned_environment("x86_64", AVX2_FLAGS, ("X86_V4", "AVX512_ICL"))
    assert pins == {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                    "DNNL_MAX_CPU_ISA": "AVX2", "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL"}


def test_a_cpu_without_avx2_gets_torchs_default_kernels_and_other_architectures_nothing():
    assert pinned_environment("x86_64", frozenset({"sse2", "avx"}), ())["ATEN_CPU_CAPABILITY"] == "default"
    assert "NPY_DISABLE_CPU_FEATURES" not in pinned_environment("x86_64", AVX2_FLAGS, ())
    assert pinned_environment("aarch64", AVX2_FLAGS, ("X86_V4",)) == {}


def test_numpy_accepts_the_disabled_features_without_a_warning_on_this_cpu():
    features = numpy_features_above_avx2()
    assert all(name == "X86_V4" or name.startswith("AVX512") for name in features)
    done = subprocess.run([sys.executable, "-W", "error", "-c", "import numpy"], capture_output=True, text=True,
                          env={**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(features)})
    assert done.returncode == 0, done.stderr


def test_the_pins_win_over_the_users_values_unless_pinning_is_switched_off():
    pins = pinned_environment()
    user = {"ATEN_CPU_CAPABILITY": "avx512", "PATH": "/bin"}
    if pins:
        assert process_environment(user)["ATEN_CPU_CAPABILITY"] == pins["ATEN_CPU_CAPABILITY"]
        assert overridden(pins, user) == [f"ATEN_CPU_CAPABILITY=avx512 (pinned: {pins['ATEN_CPU_CAPABILITY']})"]
    off = {**user, SWITCH: "off"}
    assert kernel_pins(off) == {} and process_environment(off) == off


def test_reproduce_starts_its_kernels_with_one_thread_and_the_pins(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx512")  # a user's stray value
    seen = {}

    def fake_run_all(notebooks, staging, reports, parameters, profile, progress, jobs):
        seen.update({name: os.environ.get(name) for name in (*VARIABLES, "OMP_NUM_THREADS", "MKL_NUM_THREADS")})
        return [report.NotebookResult(notebooks[0].stem, "Figure 3", 1.0, "now", (), "AVX2")]

    monkeypatch.setattr(report, "_run_all", fake_run_all)
    report.reproduce("smoke", ["fig3_acsl_illustration"], tmp_path / "reports", tmp_path / "runs", tmp_path / "data",
                     device="cpu", progress=False)
    pins = pinned_environment()
    assert seen["OMP_NUM_THREADS"] == seen["MKL_NUM_THREADS"] == "1"
    kernel_pins_seen = {k: v for k, v in seen.items() if k in VARIABLES and v is not None}
    assert kernel_pins_seen == (pins or {"ATEN_CPU_CAPABILITY": "avx512"})
    assert os.environ["ATEN_CPU_CAPABILITY"] == "avx512"  # restored after the kernels
    if pins:
        assert "ATEN_CPU_CAPABILITY=avx512 (pinned: " in capsys.readouterr().err
    run = json.loads((tmp_path / "reports" / "manifest.json").read_text())["_provenance"]
    assert run["cpu_pinning"] == pins and run["cpu_capability"] == "AVX2" and run["cpu_model"]
    assert (run["cpu_note"] == "") == bool(pins)


def test_the_kernel_environment_pins_on_a_gpu_too_but_leaves_the_threads():
    environment = report.kernel_environment("cuda", environ={})
    assert environment["OMP_NUM_THREADS"] is None and environment["MKL_NUM_THREADS"] is None
    assert {k: v for k, v in environment.items() if k in VARIABLES} == pinned_environment()
    assert {k for k in report.kernel_environment("cpu", environ={SWITCH: "off"}) if k in VARIABLES} == set()


def test_torchrun_ranks_start_with_the_pins(monkeypatch):
    calls = []
    monkeypatch.setattr(launch, "torchrun_command", lambda spec, store, processes: ["true"])
    monkeypatch.setattr(launch.subprocess, "run",
                        lambda command, **kw: calls.append(kw["env"]) or SimpleNamespace(returncode=0))
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    launch.torchrun_launcher(2)(None, SimpleNamespace(progress=True))
    (env,) = calls
    assert {k: env[k] for k in pinned_environment()} == pinned_environment()
    assert env["PATH"] == os.environ["PATH"]


# --- provenance ----------------------------------------------------------------------------------------------

def test_the_provenance_has_the_cpu_model_its_pinning_and_torchs_capability(tmp_path):
    import torch

    record = provenance("smoke", 0, device=None, root=tmp_path)
    assert record["cpu_model"] and record["cpu_model"] != "unknown"
    assert record["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert isinstance(record["cpu_pinning"], dict) and isinstance(record["cpu_note"], str)
    assert f"CPU: {record['cpu_model']}" in provenance_markdown(record)


@x86_with_avx2
def test_a_process_started_with_the_pins_runs_torch_at_avx2_and_says_so():
    code = "import json; from acsl.provenance import cpu_provenance; print(json.dumps(cpu_provenance()))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=process_environment({**os.environ, "ATEN_CPU_CAPABILITY": "default"}))
    record = json.loads(done.stdout)
    assert record["cpu_capability"] == "AVX2" and record["cpu_note"] == ""
    assert record["cpu_pinning"]["ATEN_CPU_CAPABILITY"] == "avx2"


def test_a_capability_other_than_the_pinned_one_is_said_clearly():
    note = capability_note({"ATEN_CPU_CAPABILITY": "default"}, "DEFAULT")
    assert "DEFAULT" in note and "not the pinned AVX2" in note
    assert "not pinned" in capability_note({SWITCH: "off"}, "AVX512")
    assert capability_note({"ATEN_CPU_CAPABILITY": "avx2"}, "AVX2") == ""
    record = {**provenance("smoke", None, None), "cpu_note": note}
    assert f"**Warning: {note}**" in provenance_markdown(record)
    page = render_index({"_provenance": {**record, "started": "x", "wall_s": 1.0}})
    assert "<b>Warning: torch ran its DEFAULT kernels" in page and "<th>CPU</th>" in page


# --- the reference and --verify --------------------------------------------------------------------------------

TABLE = ("metric,,mAP,mAP,profile\nsource,,ours,paper,\nmethod,xi,,,\nbaseline (1x),,1.94,21.18,smoke\n"
         "ACSL,0.1,1.63,,smoke\nACSL,0.7,2.06,26.36,smoke\n")
PER_SEED = "seed,method,xi,mAP,train_s,profile\n0,baseline (1x),,1.94,12.5,smoke\n0,ACSL,0.7,2.06,3.1,smoke\n"
CLAIMS = "claim,paper,ours,verdict\nACSL raises APr,14.34,-1.578424315964285,pipeline check only (smoke)\n"


def _report(folder: Path) -> Path:
    folder.mkdir(parents=True)
    files = {"table2_xi_ablation.csv": TABLE, "table2_xi_ablation_per_seed.csv": PER_SEED,
             "table2_xi_ablation_claims.csv": CLAIMS}
    for name, text in files.items():
        (folder / name).write_text(text)
    manifest = {"table2_xi_ablation": {"title": "Table 2", "profile": "smoke", "wall_s": 1.0, "seeds": [0],
                                       "files": sorted(files) + ["table2_xi_ablation.html"], "cpu_capability": "AVX2"},
                "_provenance": {"git_commit": "0123456789abcdef", "git_dirty": False, "torch": "2.14.1",
                                "numpy": "2.4.6", "cpu_model": "Test CPU 9000", "cpu_capability": "AVX2",
                                "cpu_pinning": {"ATEN_CPU_CAPABILITY": "avx2"}, "cpu_note": ""}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture
def fabricated(tmp_path):
    reports = _report(tmp_path / "reports")
    assert main(["reference", "update", str(reports), "--reference-root", str(tmp_path / "reference")]) == 0
    return reports, tmp_path / "reference"


def test_update_writes_the_csvs_without_timings_and_the_provenance(fabricated):
    _, root = fabricated
    folder = root / "smoke"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [PROVENANCE_NAME, "table2_xi_ablation.csv", "table2_xi_ablation_claims.csv", "table2_xi_ablation_per_seed.csv"])
    assert "train_s" not in (folder / "table2_xi_ablation_per_seed.csv").read_text()
    assert (folder / "table2_xi_ablation.csv").read_text() == TABLE
    recorded = json.loads((folder / PROVENANCE_NAME).read_text())
    assert recorded["report"]["cpu_model"] == "Test CPU 9000" and recorded["profile"] == "smoke"
    assert recorded["notebooks"]["table2_xi_ablation"]["cpu_capability"] == "AVX2"
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temporary left


def test_an_equal_report_verifies_with_exit_0_and_names_the_reference(fabricated, capsys):
    reports, root = fabricated
    (reports / "table2_xi_ablation_per_seed.csv").write_text(PER_SEED.replace("12.5", "99.0"))  # a timing
    assert main(["reference", "verify", str(reports), "--reference-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"against {root / 'smoke'}" in out and "Test CPU 9000" in out and "pinned to AVX2" in out
    assert "OK: all 29 cells of 3 CSV files equal the reference" in out


def test_one_changed_cell_is_named_with_its_file_row_column_and_both_values(fabricated, capsys):
    reports, root = fabricated
    (reports / "table2_xi_ablation.csv").write_text(TABLE.replace("ACSL,0.7,2.06", "ACSL,0.7,2.07"))
    assert main(["reference", "verify", str(reports), "--reference-root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "DIFFERS: 1 difference(s)" in out
    assert "table2_xi_ablation.csv, line 6 (ACSL | 0.7), column mAP / ours: reference 2.06, ours 2.07" in out


def test_missing_and_extra_files_rows_and_columns_are_named(fabricated):
    reports, root = fabricated
    (reports / "table2_xi_ablation_claims.csv").unlink()
    (reports / "table2_xi_ablation_per_seed.csv").write_text(
        "seed,method,xi,mAP,APr,profile\n0,ACSL,0.7,2.06,1.0,smoke\n0,EQL,,1.0,1.0,smoke\n")
    manifest = json.loads((reports / "manifest.json").read_text())
    (reports / "table2_xi_ablation_fidelity.csv").write_text("claim,ours\nx,1.0\n")
    manifest["table2_xi_ablation"]["files"].append("table2_xi_ablation_fidelity.csv")
    (reports / "manifest.json").write_text(json.dumps(manifest))
    found = {str(d) for d in verify(reports, None, root).differences}
    assert found == {
        "table2_xi_ablation_claims.csv: missing file (in the reference, not in the report)",
        "table2_xi_ablation_fidelity.csv: extra file (in the report, not in the reference)",
        "table2_xi_ablation_per_seed.csv: missing row line 2 (0 | baseline (1x))",
        "table2_xi_ablation_per_seed.csv: extra row line 3 (0 | EQL)",
        "table2_xi_ablation_per_seed.csv: extra column APr"}


def test_a_missing_reference_names_its_folder_and_the_command_that_writes_it(tmp_path, capsys):
    reports = _report(tmp_path / "reports")
    assert main(["reference", "verify", str(reports), "--reference-root", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "none" / "smoke") in err and f"acsl reference update {reports} --profile smoke" in err


def test_reproduce_verify_fails_before_running_without_a_reference(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(report, "reproduce", lambda *a, **k: pytest.fail("ran without a reference"))
    code = main(["reproduce", "--profile", "smoke", "--verify", "--reports", str(tmp_path / "reports"),
                 "--reference-root", str(tmp_path / "none")])
    assert code == 1 and "no reference for profile 'smoke'" in capsys.readouterr().err


def test_reproduce_verify_checks_the_report_it_made(fabricated, monkeypatch, capsys):
    reports, root = fabricated
    result = report.NotebookResult("table2_xi_ablation", "Table 2", 1.0)
    monkeypatch.setattr(report, "reproduce", lambda *a, **k: [result])
    args = ["reproduce", "--profile", "smoke", "--only", "table2_xi_ablation", "--verify", "--reports", str(reports),
            "--reference-root", str(root)]
    assert main(args) == 0 and "OK: all 29 cells" in capsys.readouterr().out
    (reports / "table2_xi_ablation_claims.csv").write_text(CLAIMS.replace("-1.578424315964285", "-1.57842431596429"))
    assert main(args) == 1
    assert "column ours: reference -1.578424315964285, ours -1.57842431596429" in capsys.readouterr().out
