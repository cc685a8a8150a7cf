"""The reference numbers of a profile, and the check that a report reproduces them cell for cell.

docs/ARCHITECTURE.md, "The same numbers on any machine": ``reference/<profile>/`` (at the repository root)
holds the numeric CSVs of a finished report of that profile (every ``.csv`` its notebooks wrote: tables,
per-seed tables, claims, mappings) without their timing columns (``TIMING_COLUMN``), and ``provenance.json``,
where they come from: the commit, the software, the CPU model, its pinned kernels and the level torch ran.
``write_reference`` makes it from a report folder (``acsl reference update``), into a temporary folder
renamed into place. ``verify`` compares a report with it (``acsl reference verify``, ``acsl reproduce
--verify``): every cell as written, as a string (the tables are rounded to 2 decimals, the claims are not),
and names every cell that differs, every missing or extra file, row and column.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .io import atomic_write_json, remove_stale_temporaries
from .notebook import repository_root
from .provenance import cpu_line

PROVENANCE_NAME = "provenance.json"
MANIFEST_NAME = "manifest.json"  # acsl.report's; not imported, so that this module needs no nbformat
#: A column whose header matches is a timing, different on every run: left out of the reference and the check.
TIMING_COLUMN = re.compile(r"(_s|_ms|_seconds)$|wall|timing|\btime\b", re.IGNORECASE)


def default_root() -> Path:
    """``reference/`` at the repository root (the working directory's outside a checkout)."""
    root = repository_root()
    return (root if root is not None else Path.cwd()) / "reference"


def reference_dir(profile: str, root: str | Path | None = None) -> Path:
    return Path(root if root is not None else default_root()) / profile


def _manifest(reports: Path) -> dict[str, Any]:
    path = reports / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{reports} holds no {MANIFEST_NAME}: not a report of acsl reproduce")
    return json.loads(path.read_text())


def report_profile(reports: str | Path, profile: str | None = None) -> str:
    """``profile``, else the one profile of the report's notebooks (an error naming them when it has several)."""
    if profile is not None:
        return profile
    profiles = sorted({e["profile"] for n, e in _manifest(Path(reports)).items() if not n.startswith("_")})
    if len(profiles) != 1:
        raise ValueError(f"{reports} holds notebooks of the profiles {profiles or 'none'}: name one with --profile")
    return profiles[0]


def report_csvs(reports: str | Path, profile: str, only: list[str] | None = None) -> dict[str, Path]:
    """The CSV files of the report's notebooks executed in ``profile`` (of ``only`` if given), by name."""
    reports = Path(reports)
    manifest = _manifest(reports)
    names = [n for n, e in manifest.items() if not n.startswith("_") and e.get("profile") == profile
             and (only is None or n in only)]
    return {f: reports / f for n in names for f in manifest[n].get("files", []) if f.endswith(".csv")}


def read_grid(path: Path) -> list[list[str]]:
    """The CSV as rows of strings, its timing columns left out."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header = rows[: _header_lines(rows)]
    drop = {c for line in header for c, cell in enumerate(line) if cell and TIMING_COLUMN.search(cell)}
    return [[cell for c, cell in enumerate(row) if c not in drop] for row in rows]


def _numeric(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _header_lines(rows: list[list[str]]) -> int:
    """The header lines pandas wrote (its column levels and index names): the leading lines without a number."""
    count = 0
    while count < len(rows) and not any(_numeric(cell) for cell in rows[count]):
        count += 1
    return max(1, count) if count < len(rows) else min(1, len(rows))


def _index_columns(rows: list[list[str]], header: int) -> int:
    """The index columns: those named by pandas' index-names line under a multi-level header (its names
    first, then nothing; the level lines above it empty there but for the level names), else 1."""
    if header < 2:
        return 1
    last = rows[header - 1]
    named = next((i for i, cell in enumerate(last) if not cell), len(last))
    if named == 0 or any(last[named:]) or any(rows[i][c] for i in range(header - 1) for c in range(1, named)):
        return 1
    return named


@dataclass(frozen=True)
class Difference:
    """One way a report differs from the reference: a cell, or a missing or extra file, row or column."""

    file: str
    kind: str  # "cell", "missing file", "extra file", "missing row", "extra row", "missing column", "extra column"
    where: str = ""
    reference: str = ""
    ours: str = ""

    def __str__(self) -> str:
        if self.kind == "cell":
            return f"{self.file}, {self.where}: reference {self.reference or '(empty)'}, ours {self.ours or '(empty)'}"
        return f"{self.file}: {self.kind}{' ' + self.where if self.where else ''}"


def _keyed(items: list[tuple]) -> dict[tuple, int]:
    """Each key with its occurrence number, so repeated labels still match in order: key → position."""
    seen: dict[tuple, int] = {}
    keyed = {}
    for position, key in enumerate(items):
        seen[key] = seen.get(key, -1) + 1
        keyed[(*key, seen[key])] = position
    return keyed


def _row_key(row: list[str], index: int) -> tuple[str, ...]:
    """What names a row: its index cells (named by a multi-level header), else its first cell and the
    labels after it up to the first number (at most 3 cells: "0 | ACSL" in a per-seed table)."""
    if index > 1:
        return tuple(row[:index])
    key = row[:1]
    for cell in row[1:3]:
        if not cell or _numeric(cell):
            break
        key.append(cell)
    return tuple(key)


def _row_label(row: list[str], index: int) -> str:
    cells = list(_row_key(row, index))
    while len(cells) > 1 and not cells[-1]:
        cells.pop()
    return " | ".join(c if len(c) <= 40 else c[:39] + "…" for c in cells)


def _padded(grid: list[list[str]]) -> list[list[str]]:
    width = max((len(row) for row in grid), default=0)
    return [row + [""] * (width - len(row)) for row in grid]


def _column_label(key: tuple, position: int) -> str:
    return " / ".join(cell for cell in key[:-1] if cell) or f"column {position + 1}"


def compare_grids(name: str, reference: list[list[str]], ours: list[list[str]]) -> tuple[list[Difference], int]:
    """Every difference between two CSV grids, columns matched by their header cells and rows by their
    index cells (in order where they repeat); and the number of cells compared."""
    reference, ours = _padded(reference), _padded(ours)
    h_ref, h_ours = _header_lines(reference), _header_lines(ours)
    columns = [_keyed([tuple(grid[i][c] for i in range(h)) for c in range(len(grid[0]) if grid else 0)])
               for grid, h in ((reference, h_ref), (ours, h_ours))]
    k = _index_columns(reference, h_ref)
    rows = [_keyed([_row_key(r, k) for r in grid[h:]]) for grid, h in ((reference, h_ref), (ours, h_ours))]
    differences = [Difference(name, "missing column", _column_label(key, c)) for key, c in columns[0].items()
                   if key not in columns[1]]
    differences += [Difference(name, "extra column", _column_label(key, c)) for key, c in columns[1].items()
                    if key not in columns[0]]
    differences += [Difference(name, "missing row", f"line {h_ref + p + 1} ({_row_label(reference[h_ref + p], k)})")
                    for key, p in rows[0].items() if key not in rows[1]]
    differences += [Difference(name, "extra row", f"line {h_ours + p + 1} ({_row_label(ours[h_ours + p], k)})")
                    for key, p in rows[1].items() if key not in rows[0]]
    compared = 0
    for key, p in rows[0].items():
        if key not in rows[1]:
            continue
        ref_row, our_row = reference[h_ref + p], ours[h_ours + rows[1][key]]
        for column, c in columns[0].items():
            if column in columns[1]:
                compared += 1
                if ref_row[c] != our_row[columns[1][column]]:
                    where = (f"line {h_ours + rows[1][key] + 1} ({_row_label(our_row, k)}), "
                             f"column {_column_label(column, c)}")
                    differences.append(Difference(name, "cell", where, ref_row[c], our_row[columns[1][column]]))
    return differences, compared


@dataclass
class Verification:
    """The outcome of ``verify``: what was compared with what, and every difference."""

    reports: Path
    reference: Path
    profile: str
    differences: list[Difference] = field(default_factory=list)
    files: int = 0
    cells: int = 0
    reference_provenance: dict[str, Any] = field(default_factory=dict)
    report_provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.differences


def require_reference(profile: str, root: str | Path | None = None, reports: str | Path = "reports") -> Path:
    """The reference folder of ``profile``, or a ``FileNotFoundError`` naming it and the command that writes it."""
    folder = reference_dir(profile, root)
    if not (folder / PROVENANCE_NAME).is_file():
        raise FileNotFoundError(
            f"no reference for profile {profile!r}: {folder} does not exist (or has no {PROVENANCE_NAME}); "
            f"write it from a finished report with `acsl reference update {reports} --profile {profile}`")
    return folder


def verify(reports: str | Path = "reports", profile: str | None = None, root: str | Path | None = None,
           only: list[str] | None = None) -> Verification:
    """Compare the report's CSVs (of the notebooks in ``only``, if given) with ``reference/<profile>/``."""
    reports = Path(reports)
    profile = report_profile(reports, profile)
    folder = require_reference(profile, root, str(reports))
    recorded = json.loads((folder / PROVENANCE_NAME).read_text())
    expected = set(recorded.get("files", []))
    if only is not None:
        expected = {f for n, e in recorded.get("notebooks", {}).items() if n in only for f in e.get("files", [])}
    ours = {name: path for name, path in report_csvs(reports, profile, only).items() if path.is_file()}
    result = Verification(reports, folder, profile, reference_provenance=recorded,
                          report_provenance=_manifest(reports).get("_provenance") or {})
    result.differences += [Difference(n, "missing file", "(in the reference, not in the report)")
                           for n in sorted(expected - set(ours))]
    result.differences += [Difference(n, "extra file", "(in the report, not in the reference)")
                           for n in sorted(set(ours) - expected)]
    for name in sorted(expected & set(ours)):
        found, cells = compare_grids(name, read_grid(folder / name), read_grid(ours[name]))
        result.differences += found
        result.files, result.cells = result.files + 1, result.cells + cells
    return result


def _origin(record: dict[str, Any]) -> str:
    commit = str(record.get("git_commit", "unknown"))
    state = {True: "uncommitted changes", False: "clean tree"}.get(record.get("git_dirty"), "tree state unknown")
    return (f"commit {commit[:12]} ({state}), torch {record.get('torch', '?')}, numpy {record.get('numpy', '?')}; "
            f"{cpu_line(record)}" + (f" (warning: {record['cpu_note']})" if record.get("cpu_note") else ""))


def verification_text(result: Verification) -> str:
    """The check as a reader needs it: which reference, made where, against which report, then every
    difference (or that there is none)."""
    reference = result.reference_provenance
    lines = [f"acsl verify: {result.reports} (profile {result.profile}) against {result.reference}",
             f"  reference: written {reference.get('written', '?')}, {_origin(reference.get('report') or {})}",
             f"  this report: {_origin(result.report_provenance)}"]
    if result.ok:
        lines.append(f"OK: all {result.cells} cells of {result.files} CSV files equal the reference")
    else:
        lines.append(f"DIFFERS: {len(result.differences)} difference(s) ({result.cells} cells of {result.files} "
                     "CSV files compared):")
        lines += [f"  {difference}" for difference in result.differences]
    return "\n".join(lines)


def write_reference(reports: str | Path = "reports", profile: str | None = None,
                    root: str | Path | None = None) -> tuple[Path, list[str]]:
    """Write ``reference/<profile>/`` from the report's CSVs of that profile and its provenance, into a
    temporary folder renamed into place; return the folder and the files written."""
    reports = Path(reports)
    profile = report_profile(reports, profile)
    files = report_csvs(reports, profile)
    missing = sorted(name for name, path in files.items() if not path.is_file())
    if not files or missing:
        what = f"no CSV file of profile {profile!r}" if not files else "no " + ", ".join(missing)
        raise FileNotFoundError(f"{reports} has {what}: run `acsl reproduce --profile {profile} --reports {reports}` first")
    target = reference_dir(profile, root)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target.parent, depth=1)
    manifest = _manifest(reports)
    tmp = Path(tempfile.mkdtemp(prefix=f".{profile}.pid{os.getpid()}-", suffix=".tmp", dir=target.parent))
    try:
        for name, path in sorted(files.items()):
            with open(tmp / name, "w", newline="", encoding="utf-8") as handle:
                csv.writer(handle, lineterminator="\n").writerows(read_grid(path))
        notebooks = {n: {**{k: e[k] for k in ("commit", "dirty", "started", "seeds", "cpu_capability") if k in e},
                         "files": [f for f in e.get("files", []) if f in files]}
                     for n, e in manifest.items() if not n.startswith("_") and e.get("profile") == profile}
        atomic_write_json(tmp / PROVENANCE_NAME, {
            "profile": profile, "written": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "files": sorted(files), "notebooks": notebooks, "report": manifest.get("_provenance") or {}})
        _swap(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target, sorted(files)


def _swap(new: Path, target: Path) -> None:
    """Put the folder ``new`` at ``target``: two renames, the old folder restored if the second fails."""
    if not target.exists():
        os.replace(new, target)
        return
    old = target.with_name(f".{target.name}.old.pid{os.getpid()}-{os.urandom(3).hex()}.tmp")
    os.replace(target, old)
    try:
        os.replace(new, target)
    except OSError:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
