"""``acsl reproduce``: execute the paper's notebooks with papermill, render them to HTML with nbconvert,
and write an index page — without ever replacing a good report by a half-made one.

Every notebook runs into a staging directory first. Only when all requested notebooks have executed and
rendered do their files move into ``reports/`` (one rename each) and the index get rewritten; a failing
notebook stops the command with its name and cell, and the previous report stays as it was (the failed
notebook is kept under ``reports/failed/`` for inspection).

The index page states where the numbers come from (docs/ARCHITECTURE.md, "Notebook parameters and
provenance"): the commit and software of the run (``acsl.provenance``), and each notebook's real start
time, wall time and seeds. Each executed notebook records the report folder as its ``output_dir``, where
its files end up, rather than the staging folder it wrote them to. The kernels start with one thread and
with their CPU kernels pinned (``kernel_environment``; docs/ARCHITECTURE.md, "The same numbers on any
machine"), and the index shows the CPU level torch ran in them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat

from .claims import CLAIMS_SUFFIX, read_claims
from .cpu_kernels import capability_note, kernel_pins, overridden, pinning_record
from .index_page import render_index
from .locks import QUIET_WAITS_ENV
from .io import atomic_write_json, atomic_write_text, ensure_writable_dir
from .profiles import get_profile
from .provenance import provenance
from .runs.timings import stage_times

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
MANIFEST_NAME = "manifest.json"
#: The comment heading the injected-parameters cell of a published notebook (see ``_record_final_location``).
STAGED_COMMENT = ("Parameters (output_dir: where acsl reproduce published this notebook's files; "
                  "it wrote them to a staging folder first)")


class NotebookFailed(RuntimeError):
    """A notebook raised while executing; the message names the notebook and the cell."""


@dataclass(frozen=True)
class NotebookResult:
    """One executed notebook: its start time (UTC), wall time and the seeds its provenance block showed."""

    name: str
    title: str
    wall_s: float
    started: str = ""
    seeds: tuple[int, ...] = ()
    cpu_capability: str = ""  # what torch ran in the kernel (its provenance block); "" when not recorded


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def available_notebooks(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The paper's notebooks, in name order."""
    if not notebooks_dir.is_dir():
        raise FileNotFoundError(f"notebooks directory not found: {notebooks_dir}")
    return sorted(p for p in notebooks_dir.glob("*.ipynb") if not p.name.startswith("."))


def notebook_title(path: Path) -> str:
    """The first Markdown heading of the notebook, or its file name."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return path.stem


def select_notebooks(only: list[str] | None, notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    notebooks = available_notebooks(notebooks_dir)
    if not only:
        return notebooks
    by_name = {p.stem: p for p in notebooks}
    unknown = [name for name in only if name.removesuffix(".ipynb") not in by_name]
    if unknown:
        raise ValueError(f"unknown notebook(s) {unknown}; available: {', '.join(by_name)}")
    return [by_name[name.removesuffix(".ipynb")] for name in only]


def _execute(notebook: Path, output: Path, parameters: dict, cwd: Path, progress: bool) -> None:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(
            str(notebook), str(output), parameters=parameters, kernel_name="python3",
            progress_bar=progress, cwd=str(cwd),
        )
    except PapermillExecutionError as error:
        first_line = (error.source or "").strip().splitlines()[:1]
        raise NotebookFailed(
            f"notebook {notebook.name} failed in cell {error.cell_index} of the executed notebook "
            f"(counting from 0, the injected-parameters cell included; execution count {error.exec_count}"
            f"{', starting ' + repr(first_line[0]) if first_line else ''}): {error.ename}: {error.evalue}"
        ) from error
    except Exception as error:  # dead kernel, timeout, missing kernel, ...
        raise NotebookFailed(f"notebook {notebook.name} could not be executed: {type(error).__name__}: {error}") from error


def _record_final_location(executed: Path, reports: Path) -> tuple[int, ...]:
    """Make the executed notebook record ``reports`` as its ``output_dir`` (papermill recorded the staging
    folder, gone once the files move) and its own published path; return the seeds its provenance block
    recorded (``acsl.provenance.show_provenance``; none for a notebook without one)."""
    from papermill.translators import translate_parameters

    notebook = nbformat.read(executed, as_version=4)
    meta = notebook.metadata.get("papermill", {})
    parameters = dict(meta.get("parameters") or {})
    if "output_dir" in parameters:
        parameters["output_dir"] = str(reports)
        meta["parameters"] = parameters
        for cell in notebook.cells:
            if "injected-parameters" in cell.metadata.get("tags", []):
                cell.source = translate_parameters("python3", "python", parameters, comment=STAGED_COMMENT)
    if meta.get("output_path"):
        meta["output_path"] = str(reports / executed.name)
    nbformat.write(notebook, executed)
    return tuple(_kernel_record(notebook).get("seeds", ()))


def _kernel_record(notebook: nbformat.NotebookNode) -> dict[str, Any]:
    """The provenance record the notebook's kernel displayed (``acsl.provenance.show_provenance``), or {}."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            record = output.get("metadata", {}).get("acsl_provenance")
            if record:
                return dict(record)
    return {}


def _render_html(executed: Path, target: Path) -> None:
    from nbconvert import HTMLExporter

    # The page reads like the paper's experiment: outputs and prose, no code (the .ipynb beside it keeps it).
    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    target.write_text(body)


def reproduce(
    profile: str = "quick",
    only: list[str] | None = None,
    reports_dir: str | Path = "reports",
    run_store: str | Path = "runs",
    data_root: str | Path = "data",
    device: str = "auto",
    notebooks_dir: Path = NOTEBOOKS_DIR,
    progress: bool = True,
    processes: int = 1,
    max_iters: int | None = None,
    jobs: int | None = None,
) -> list[NotebookResult]:
    """Execute the selected notebooks in ``profile`` and publish them into ``reports_dir``.

    ``jobs``: notebooks executed at once (``default_jobs``: one per core on a CPU, 1 on a GPU). On a CPU
    every kernel trains with one thread (``kernel_threads``), so the numbers do not depend on ``jobs``, and
    with its CPU kernels pinned (``kernel_environment``), so they do not depend on the CPU's vector width.
    A run two notebooks share is trained once: the second waits on the first's lock (``acsl.locks``).
    The longest notebooks start first (``execution_order``)."""
    get_profile(profile)
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    if max_iters is not None and max_iters < 1:
        raise ValueError(f"max_iters must be >= 1 (or None), got {max_iters}")
    notebooks = select_notebooks(only, notebooks_dir)
    run = {**provenance(profile, None, device), "started": _utc_now()}  # before anything is written
    reports = ensure_writable_dir(reports_dir, "reports").resolve()
    staging = reports / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    parameters = {
        "profile": profile,
        "device": device,
        "run_store": str(Path(run_store).resolve()),
        "data_root": str(Path(data_root).resolve()),
        "output_dir": str(staging),
        "progress": False,
    }
    if processes > 1:
        parameters["processes"] = processes
    if max_iters is not None:
        parameters["max_iters"] = max_iters
    jobs = default_jobs(device) if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    jobs = min(jobs, len(notebooks))
    threads, environment = kernel_threads(device), kernel_environment(device)
    for note in overridden(kernel_pins()):
        print(f"[acsl reproduce] note: {note}; ACSL_CPU_PINNING=off keeps your value", file=sys.stderr, flush=True)
    run.update(jobs=jobs, threads_per_kernel=threads)
    started = time.perf_counter()
    try:
        with _environment(environment):
            results = _run_all(execution_order(notebooks, reports / MANIFEST_NAME), staging, reports, parameters,
                               profile, progress, jobs)
            pinning = pinning_record()  # what the kernels started with
        # the capability torch ran in the kernels (several only if something went wrong), and a warning if not pinned
        capability = ", ".join(sorted({r.cpu_capability for r in results if r.cpu_capability})) or "unknown"
        run.update(cpu_pinning=pinning, cpu_capability=capability, cpu_note=capability_note(pinning, capability))
        position = {notebook.stem: i for i, notebook in enumerate(notebooks)}
        results.sort(key=lambda result: position[result.name])  # the order asked for, not the order run
        run.update(wall_s=round(time.perf_counter() - started, 1), seeds=sorted({s for r in results for s in r.seeds}))
        _publish(staging, reports, results, profile, stage_times(run_store), run)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return results


def default_jobs(device: str = "auto") -> int:
    """Notebooks to execute at once: one per core on a CPU (each kernel trains with one thread, see
    ``kernel_threads``), 1 on a GPU. Two 1-thread kernels do about 1.4× the work of one 2-thread kernel
    (``benchmarks/bench_train_step.py`` run twice at once with ``OMP_NUM_THREADS=1``)."""
    return 1 if _on_gpu(device) else max(1, os.cpu_count() or 1)


def kernel_threads(device: str = "auto") -> int | None:
    """The threads each kernel's torch uses: 1 on a CPU, whatever ``--jobs`` and the machine's core count,
    so that the same seed gives the same table (CPU training is chaotic: a float sum reordered by another
    thread count moves a run's AP by points); None on a GPU (torch's default)."""
    return None if _on_gpu(device) else 1


def kernel_environment(device: str = "auto", environ: dict[str, str] | None = None) -> dict[str, str | None]:
    """What ``reproduce`` sets in the environment its kernels start with (None: left as it is): the threads
    (``kernel_threads``) and the pinned CPU kernels (``acsl.cpu_kernels.kernel_pins``, which win over the
    user's own values unless ``ACSL_CPU_PINNING=off``); and quiet lock waits (``acsl.locks.QUIET_WAITS_ENV``: a
    wait between parallel notebooks would otherwise print into the waiting notebook's page)."""
    threads = kernel_threads(device)
    return {**{name: None if threads is None else str(threads) for name in THREAD_VARIABLES},
            **kernel_pins(os.environ if environ is None else environ), QUIET_WAITS_ENV: "1"}


def _on_gpu(device: str) -> bool:
    return device.startswith("cuda") or (device == "auto" and _cuda_available())


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


#: Wall seconds of each notebook in a measured ``quick`` report (2 jobs on 2 cores, from an empty run store;
#: commit e2aca7f, AMD EPYC; Tables 2 and 3 are within each other's noise): the order when ``reports/`` has none.
#: Figure 4 and Table 1 reuse Table 2's runs, and Table 4 the beyond-the-paper notebook's, so they rank by what
#: they add.
TYPICAL_WALL_S = {"beyond_after_acsl": 1324, "table2_xi_ablation": 822, "table3_backbones": 817,
                  "table5_openimages_backbones": 688, "table4_sota": 249, "table7_openimages_methods": 159,
                  "table1_group_partition": 36, "fig1_label_distribution": 8, "table6_openimages_tail": 7,
                  "fig4_per_class_ap": 8, "fig3_acsl_illustration": 6, "fig2_lvis_vs_openimages": 6}


def execution_order(notebooks: list[Path], manifest_path: Path | None = None) -> list[Path]:
    """Longest first (the last report's wall times, else ``TYPICAL_WALL_S``), so that with several jobs
    the long notebooks do not end up running alone at the end."""
    previous: dict[str, float] = {}
    if manifest_path is not None and manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
            previous = {name: float(entry["wall_s"]) for name, entry in manifest.items()
                        if not name.startswith("_") and isinstance(entry, dict) and "wall_s" in entry}
        except (json.JSONDecodeError, TypeError, ValueError):
            previous = {}
    return sorted(notebooks, key=lambda p: -previous.get(p.stem, TYPICAL_WALL_S.get(p.stem, 0.0)))


def _run_all(notebooks: list[Path], staging: Path, reports: Path, parameters: dict, profile: str,
             progress: bool, jobs: int) -> list[NotebookResult]:
    """Execute ``notebooks`` (in this order) with ``jobs`` at a time. After a failure no new notebook
    starts; those running finish, then the first failure is raised."""
    if jobs == 1:
        return [_run_one(notebook, staging, reports, parameters, profile, progress) for notebook in notebooks]
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    results: list[NotebookResult] = []
    failure: BaseException | None = None
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        with pool:
            waiting, running = list(notebooks), set()
            while waiting or running:
                while waiting and len(running) < jobs and failure is None:
                    running.add(pool.submit(_run_one, waiting.pop(0), staging, reports, parameters, profile,
                                            progress))
                if not running:
                    break
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    try:
                        results.append(future.result())
                    except BaseException as error:  # noqa: BLE001 - raised below, after the others finish
                        failure = failure or error
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)  # the CLI then exits at once; the kernels follow their parent
        raise
    if failure is not None:
        raise failure
    return results


#: The thread-count variables a kernel's torch, OpenMP and MKL read at start.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def _environment(values: dict[str, str | None]):
    """Set (a value) or leave alone (None) these environment variables for the ``with`` block, which the
    kernels it starts inherit; restore them after."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update({name: value for name, value in values.items() if value is not None})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _run_one(notebook: Path, staging: Path, reports: Path, parameters: dict, profile: str,
             progress: bool) -> NotebookResult:
    """Execute one notebook into ``staging`` and render it; a failure keeps it under ``reports/failed``."""
    started_at, started = _utc_now(), time.perf_counter()
    if progress:
        print(f"[acsl reproduce] {notebook.stem}: executing ({profile} profile)", flush=True)
    executed = staging / notebook.name
    try:
        _execute(notebook, executed, parameters, cwd=Path.cwd(), progress=progress)
        try:
            seeds = _record_final_location(executed, reports)
            capability = str(_kernel_record(nbformat.read(executed, as_version=4)).get("cpu_capability", ""))
        except Exception as error:
            raise NotebookFailed(f"notebook {notebook.name} ran but its executed copy could not be updated "
                                 f"with its published location: {type(error).__name__}: {error}") from error
        try:
            _render_html(executed, staging / f"{notebook.stem}.html")
        except Exception as error:
            raise NotebookFailed(f"notebook {notebook.name} ran but could not be rendered to HTML: {error}") from error
    except NotebookFailed:
        failed_dir = reports / "failed"
        failed_dir.mkdir(exist_ok=True)
        if executed.exists():
            os.replace(executed, failed_dir / notebook.name)
        raise
    wall = time.perf_counter() - started
    if progress:
        print(f"[acsl reproduce] {notebook.stem}: done in {wall:.0f} s", flush=True)
    return NotebookResult(notebook.stem, notebook_title(notebook), wall, started_at, seeds, capability)


def _publish(staging: Path, reports: Path, results: list[NotebookResult], profile: str,
             stages: dict[str, float] | None = None, run: dict[str, Any] | None = None) -> None:
    """Prepare the new manifest and index in staging, then move every file into place (one rename
    each, the index last), so an unreadable manifest stops the command before anything moved."""
    manifest_path = reports / MANIFEST_NAME
    try:
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    except json.JSONDecodeError as error:
        raise RuntimeError(f"{manifest_path} is not valid JSON ({error}); delete it to rebuild the index") from error
    staged = sorted(p.name for p in staging.iterdir())
    for result in results:
        previous = {p.name for p in reports.glob(f"{result.name}*") if p.is_file()}
        files = sorted(previous | {name for name in staged if name.startswith(result.name)})
        manifest[result.name] = {"title": result.title, "profile": profile, "wall_s": round(result.wall_s, 1),
                                 "started": result.started, "seeds": list(result.seeds), "files": files}
        if result.cpu_capability:
            manifest[result.name]["cpu_capability"] = result.cpu_capability
        if run is not None:
            manifest[result.name].update(commit=run["git_commit"], dirty=run["git_dirty"])
        claims_file = staging / f"{result.name}{CLAIMS_SUFFIX}"
        if claims_file.is_file():
            manifest[result.name]["claims"] = read_claims(claims_file)
    if stages is not None:
        manifest["_stage_times"] = stages
    if run is not None:
        manifest["_provenance"] = run
    atomic_write_json(staging / MANIFEST_NAME, manifest)
    atomic_write_text(staging / "index.html", render_index(manifest))
    for name in sorted(os.listdir(staging), key=lambda n: n == "index.html"):
        os.replace(staging / name, reports / name)
