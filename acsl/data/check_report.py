"""The report of ``acsl data check``: problems grouped by kind, a count and a few examples each, image
problems first, and a subset file's ``frequency`` mismatch said once, as information.

``acsl.data.check.check_lvis`` lists every problem of an annotation file; on a real file they can number
in the thousands, most of one kind. ``check_report`` groups them: missing, unreadable and wrong-size
images (and a missing image folder) come first, whatever else there is; then every other kind, by the
field it concerns (``annotations[].bbox``), largest first. LVIS's ``frequency`` (r ≤ 10 training
images, c 11–100, f > 100) comes from the full training set (docs/ARCHITECTURE.md, "Evaluation rules":
r/c/f groups from the ``frequency`` field): in a file cut from it, or in a val file, a category's
``image_count`` counts fewer images than its ``frequency`` needs. Mismatches of that direction only
are one note, not one error per category; a count above what the frequency allows stays an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .check import check_lvis
from .problems import Problem
from .stats import frequency_from_image_count

#: Kinds that are always reported first, in this order.
IMAGE_KINDS = ("image folder missing", "missing image", "unreadable image", "wrong-size image")
_FREQUENCY_MISMATCH = re.compile(r"'([rcf])' is inconsistent with image_count (\d+)")
_ORDER = {"r": 0, "c": 1, "f": 2}


def problem_kind(problem: Problem) -> str:
    """The kind of a problem: one of ``IMAGE_KINDS``, or its field with the indices dropped."""
    if problem.field == "<image root>":
        return "image folder missing"
    if "image file not found" in problem.message:
        return "missing image"
    if "cannot decode" in problem.message:
        return "unreadable image"
    if "pixels but the annotation file says" in problem.message:
        return "wrong-size image"
    return re.sub(r"\[\d+\]", "[]", problem.field)


@dataclass
class CheckReport:
    """Problems by kind (image kinds first, then the largest groups) and notes (information only)."""

    file: str
    groups: dict[str, list[Problem]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def num_problems(self) -> int:
        return sum(len(problems) for problems in self.groups.values())

    def format(self, examples: int = 5) -> str:
        """A count per kind and its first ``examples`` problems; then the notes."""
        if examples < 1:
            raise ValueError(f"examples must be >= 1, got {examples}")
        lines = [f"{self.file}: " + (f"{_count(self.num_problems, 'problem')} of {_count(len(self.groups), 'kind')}"
                                     if self.groups else "OK: no problems found")]
        for kind, problems in self.groups.items():
            shown = problems[:examples]
            more = f" (first {len(shown)})" if len(problems) > len(shown) else ""
            lines.append(f"{kind}: {len(problems)}{more}")
            lines += [f"  {p.field}: {p.message}" + (f" [{p.file}]" if p.file != self.file else "") for p in shown]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _frequency_from_full_dataset(problems: list[Problem]) -> tuple[list[Problem], str | None]:
    """(the problems without the frequency mismatches a subset or val file is expected to have, the note
    that replaces them); mismatches the other way round stay problems."""
    lower, kept = [], []
    for problem in problems:
        match = _FREQUENCY_MISMATCH.search(problem.message) if problem.field.endswith(".frequency") else None
        if match and _ORDER[frequency_from_image_count(int(match.group(2)))] < _ORDER[match.group(1)]:
            lower.append(problem)
        else:
            kept.append(problem)
    if not lower:
        return problems, None
    return kept, (f"{len(lower)} categories have an image_count in this file below what their frequency needs "
                  "(r <= 10 images, c 11-100, f > 100): frequency comes from the full LVIS training set, and this "
                  "file counts fewer images (a subset or a val file); the r/c/f groups follow the full dataset. "
                  "Information, not an error")


def check_report(ann_file: str | Path, image_root: str | Path | None, *, version: str | None = None,
                 check_images: bool | Literal["all"] = True) -> CheckReport:
    """Every problem of ``ann_file`` and its images (``check_lvis``, uncapped), grouped (module docstring)."""
    problems, note = _frequency_from_full_dataset(check_lvis(ann_file, image_root, version=version,
                                                             check_images=check_images, max_problems=None))
    groups: dict[str, list[Problem]] = {}
    for problem in problems:
        groups.setdefault(problem_kind(problem), []).append(problem)
    ordered = {kind: groups.pop(kind) for kind in IMAGE_KINDS if kind in groups}
    ordered.update(sorted(groups.items(), key=lambda item: -len(item[1])))
    return CheckReport(str(ann_file), ordered, [note] if note else [])


def _count(number: int, noun: str) -> str:
    """``1 problem``, ``3 problems``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
