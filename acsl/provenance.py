"""Where a report's numbers come from: the code (git commit, uncommitted changes), the software (Python,
torch, torchvision, faster-coco-eval, numpy), the device, the CPU (its model, the pinned kernels and the
capability torch actually ran, docs/ARCHITECTURE.md, "The same numbers on any machine"), the profile and
the seeds.

docs/ARCHITECTURE.md, "Notebook parameters and provenance": every notebook shows this block under its
parameters (``show_provenance``, in its first code cell), and ``acsl reproduce`` prints it on the index
page. Nothing here raises on a machine without git or outside a checkout: what cannot be known reads
``"unknown"``.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from .cpu_kernels import capability_note, cpu_model, pinning_record, pinning_summary
from .notebook import repository_root

UNKNOWN = "unknown"
#: The distributions whose versions a report records, by the name ``provenance`` gives them.
PACKAGES = {"torch": "torch", "torchvision": "torchvision", "faster_coco_eval": "faster-coco-eval", "numpy": "numpy"}


def _git(root: Path, *args: str) -> str | None:
    """The output of ``git -C root ARGS``, or ``None`` when git is missing or fails."""
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20,
                              env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})  # status writes no index lock
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(root: str | os.PathLike | None = None) -> tuple[str, bool | str]:
    """(commit, dirty) of the checkout at ``root`` (default: the repository acsl is imported from).

    ``dirty`` is True when ``git status`` lists anything (changed, staged or untracked files that
    ``.gitignore`` does not hide). Outside a git checkout, without git, or for a wheel install both are
    ``"unknown"``."""
    root = Path(root) if root is not None else repository_root()
    if root is None:
        return UNKNOWN, UNKNOWN
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return UNKNOWN, UNKNOWN
    status = _git(root, "status", "--porcelain")
    return commit.strip(), UNKNOWN if status is None else bool(status.strip())


def package_version(distribution: str) -> str:
    """The installed version of ``distribution``, or ``"not installed"``."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe_device(device: str | None) -> str:
    """The device a notebook computes on, resolved as the run store resolves it (``"auto"``: CUDA when
    available, else the CPU), with the GPU's name or the CPU's core count; ``None``: no device used."""
    if device is None:
        return "none (nothing is trained or evaluated)"
    try:
        import torch

        from .engine.distributed import process_device

        resolved = process_device(device)
        if resolved.type == "cuda":
            return f"{resolved} ({torch.cuda.get_device_name(resolved)})"
        if resolved.type == "cpu":
            return f"cpu ({os.cpu_count() or '?'} cores{', ' + platform.processor() if platform.processor() else ''})"
        return str(resolved)
    except Exception as error:  # a device this machine does not have: say so, never fail the report
        return f"{device} (not resolved here: {type(error).__name__}: {error})"


def torch_cpu_capability() -> str:
    """The CPU capability torch's kernels run at in this process (``"AVX2"``, ``"AVX512"``, ``"DEFAULT"``, ...),
    fixed at its first CPU kernel from ``ATEN_CPU_CAPABILITY`` or the CPU; ``"unknown"`` without torch."""
    try:
        import torch

        return str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # noqa: BLE001 - provenance never fails the report
        return UNKNOWN


def cpu_provenance() -> dict[str, Any]:
    """This process's CPU: ``cpu_model``, ``cpu_pinning`` (the pinning variables in its environment, see
    ``acsl.cpu_kernels``), ``cpu_capability`` (what torch runs) and ``cpu_note`` (a warning when that is not
    the pinned level, else "")."""
    pinning, capability = pinning_record(), torch_cpu_capability()
    return {"cpu_model": cpu_model(), "cpu_pinning": pinning, "cpu_capability": capability,
            "cpu_note": capability_note(pinning, capability)}


def cpu_line(record: dict[str, Any]) -> str:
    """The CPU in one line: model, pinning and the capability torch ran (plain text, for Markdown and HTML)."""
    if "cpu_model" not in record:
        return "CPU: not recorded"
    return (f"CPU: {record['cpu_model']} · kernels {pinning_summary(record.get('cpu_pinning') or {})} · "
            f"torch ran {record.get('cpu_capability', UNKNOWN)}")


def _seed_list(seeds: int | Sequence[int] | None) -> list[int]:
    if seeds is None:
        return []
    if isinstance(seeds, bool) or not isinstance(seeds, (int, Sequence)) or isinstance(seeds, str):
        raise ValueError(f"seeds: expected an int, a list of ints or None, got {seeds!r}")
    values = [seeds] if isinstance(seeds, int) else list(seeds)
    if any(isinstance(s, bool) or not isinstance(s, int) for s in values):
        raise ValueError(f"seeds: expected an int, a list of ints or None, got {seeds!r}")
    return values


def provenance(profile: str, seeds: int | Sequence[int] | None = None, device: str | None = "auto",
               root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The provenance of a report, as a JSON-serialisable dict with the keys ``git_commit``, ``git_dirty``
    (True, False or ``"unknown"``), ``python``, ``torch``, ``torchvision``, ``faster_coco_eval``,
    ``numpy``, ``device``, ``profile``, ``seeds`` (a list; empty when nothing random is drawn) and this
    process's CPU (``cpu_provenance``: ``cpu_model``, ``cpu_pinning``, ``cpu_capability``, ``cpu_note``).

    ``device`` is the notebook's ``device`` parameter (None for a notebook that computes nothing);
    ``root`` the checkout to read git from (default: the repository acsl is imported from)."""
    commit, dirty = git_state(root)
    record: dict[str, Any] = {"git_commit": commit, "git_dirty": dirty, "python": platform.python_version()}
    record.update({key: package_version(name) for key, name in PACKAGES.items()})
    record.update({"device": describe_device(device), "profile": profile, "seeds": _seed_list(seeds)})
    record.update(cpu_provenance())
    return record


def provenance_markdown(record: dict[str, Any]) -> str:
    """``record`` (from ``provenance``) as a short Markdown block."""
    commit = record["git_commit"]
    if commit == UNKNOWN:
        code = "commit unknown (not a git checkout)"
    else:
        changes = {True: "with uncommitted changes", False: "clean tree", UNKNOWN: "tree state unknown"}
        code = f"commit `{commit[:12]}` ({changes[record['git_dirty']]})"
    software = " · ".join(f"{name} {record[key]}" for key, name in
                          (("python", "Python"), *((key, dist) for key, dist in PACKAGES.items())))
    seeds = ", ".join(map(str, record["seeds"])) or "none"
    note = f"  \n**Warning: {record['cpu_note']}**" if record.get("cpu_note") else ""
    return (f"**Provenance** — {code}  \n{software}  \n"
            f"device: {record['device']} · profile `{record['profile']}` · seed(s): {seeds}  \n"
            f"{cpu_line(record)}{note}")


def show_provenance(profile: str, seeds: int | Sequence[int] | None = None, device: str | None = "auto") -> None:
    """Display the provenance block in a notebook (returning nothing, so a cell ending with it echoes
    nothing more). The record (``provenance``) also travels in the output's metadata, under the key
    ``acsl_provenance``, where ``acsl reproduce`` reads the seeds for the index page."""
    from IPython.display import Markdown, display

    record = provenance(profile, seeds, device)
    display(Markdown(provenance_markdown(record)), metadata={"acsl_provenance": record})
