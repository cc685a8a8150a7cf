"""Problems found in an annotation file and the images it references: what ``acsl data check``
reports (:class:`Problem`), how they are collected under a cap, and how the report prints."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Problem", "ProblemCollector", "format_report"]


@dataclass
class Problem:
    """One thing wrong with an annotation file or an image it references.

    ``file``: the file the problem is in (the annotation file, or an image file that cannot be
    decoded); ``field``: where in it, as a JSON path such as ``categories[3].frequency``;
    ``message``: what is wrong and what was expected.
    """

    file: str
    field: str
    message: str


class ProblemCollector:
    """Accumulates problems; keeps at most ``limit`` (``None``: all) and counts the rest."""

    def __init__(self, file: str, limit: int | None) -> None:
        self.file = file
        self.limit = limit
        self.kept: list[Problem] = []
        self.total = 0

    def add(self, field: str, message: str, file: str | None = None) -> None:
        """Count one problem in ``file`` (default: the collector's file); keep it while under the cap."""
        self.total += 1
        if self.limit is None or len(self.kept) < self.limit:
            self.kept.append(Problem(self.file if file is None else file, field, message))

    def result(self) -> list[Problem]:
        """The problems found, in order; when capped, the last entry says how many more there were."""
        if self.limit is None or self.total <= self.limit:
            return list(self.kept)
        # Capped: the first (limit - 1) problems, then one summary line, so len == limit.
        shown = self.kept[: self.limit - 1]
        more = self.total - len(shown)
        return shown + [Problem(self.file, "…", f"… and {more} more problems")]


def format_report(problems: list[Problem]) -> str:
    """A human report: one ``FILE: FIELD: MESSAGE`` line per problem, or ``OK: no problems found``."""
    if not problems:
        return "OK: no problems found"
    return "\n".join(f"{p.file}: {p.field}: {p.message}" for p in problems)
