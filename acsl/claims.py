"""The paper's claims, one row each, with the verdict our runs give (the report's claims page).

A notebook states each claim of its table as a paired difference between two of our runs at the same
seeds (``acsl.verdicts.paired_verdict`` decides: one helper, one form for every notebook) and saves the
rows as ``<notebook>_claims.csv``; ``acsl reproduce`` gathers them onto the front page of the report,
each linked to the notebook section that computes it (docs/ARCHITECTURE.md, "The claims page").

Columns: ``claim`` (what the paper says, as a difference that should be > 0, < 0 or within ±tolerance),
``paper`` (the paper's value of that difference; empty when the paper gives none), ``ours`` (the mean
difference over seeds), ``low`` and ``high`` (its 95 % t interval; empty with one seed), ``seeds``,
``verdict``, ``notebook`` and ``section`` (the anchor of the section in the rendered notebook).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .tables import save_csv
from .verdicts import paired_verdict

CLAIM_COLUMNS = ("claim", "paper", "ours", "low", "high", "seeds", "verdict", "notebook", "section")
CLAIMS_SUFFIX = "_claims.csv"


def claim_row(claim: str, differences: float | Sequence[float] | Mapping[Any, float], relation: str,
              profile: str, paper: float | None, notebook: str, section: str,
              tolerance: float | None = None) -> dict[str, Any]:
    """One claim: ``differences`` are ours − comparison per seed (``paired_verdict``'s input, NaN where
    undefined), ``relation`` ``"greater"``, ``"less"`` or ``"within"`` (with ``tolerance``), ``paper``
    the paper's own difference."""
    verdict = paired_verdict(differences, relation, profile, tolerance)
    return {"claim": claim, "paper": math.nan if paper is None else float(paper), "ours": verdict.mean,
            "low": math.nan if verdict.low is None else verdict.low,
            "high": math.nan if verdict.high is None else verdict.high,
            "seeds": verdict.seeds, "verdict": verdict.verdict, "notebook": notebook, "section": section}


def claims_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The rows as a frame in ``CLAIM_COLUMNS`` order (empty, with those columns, when there are none)."""
    return pd.DataFrame(list(rows), columns=list(CLAIM_COLUMNS))


def save_claims(rows: Sequence[Mapping[str, Any]], output_dir: str | Path, notebook: str,
                profile: str | None = None) -> Path:
    """Write the notebook's claims to ``<output_dir>/<notebook>_claims.csv`` (atomically), with the profile."""
    return save_csv(claims_frame(rows).set_index("claim"), Path(output_dir) / f"{notebook}{CLAIMS_SUFFIX}", profile)


def read_claims(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a claims CSV, with NaN for empty numbers; a file without the expected columns raises a
    ``ValueError`` that names it and what is missing."""
    frame = pd.read_csv(path)
    missing = [column for column in CLAIM_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not a claims file (missing columns {', '.join(missing)}; expected "
                         f"{', '.join(CLAIM_COLUMNS)})")
    return frame[list(CLAIM_COLUMNS)].to_dict("records")


def format_paper(value: float | None) -> str:
    """The paper's difference, ``+4.08``, or "—" where the paper gives none."""
    return "—" if value is None or not math.isfinite(value) else f"{value:+.2f}"


def format_difference(value: float, low: float, high: float) -> str:
    """``+5.20 [+3.1, +7.3]`` (the mean and its 95 % interval), ``+5.20`` with one seed, and
    "undefined" when the difference has no value in this profile."""
    if value is None or not math.isfinite(value):
        return "undefined"
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return f"{value:+.2f}"
    return f"{value:+.2f} [{low:+.2f}, {high:+.2f}]"


def presentable(frame: pd.DataFrame) -> pd.DataFrame:
    """The claims as a reader sees them: the paper's difference ("—" where the paper gives none), ours
    with its 95 % interval (``format_difference``), the seeds and the verdict."""
    frame = frame.reset_index() if "claim" not in frame.columns and frame.index.name == "claim" else frame
    rows = []
    for row in frame.to_dict("records"):
        rows.append({"claim": row["claim"], "paper": format_paper(row.get("paper")),
                     "ours [95% CI]": format_difference(row["ours"], row["low"], row["high"]),
                     "seeds": int(row["seeds"]), "verdict": row["verdict"]})
    return pd.DataFrame(rows, columns=["claim", "paper", "ours [95% CI]", "seeds", "verdict"]).set_index("claim")


def display_claims(frame: pd.DataFrame) -> None:
    """Show the claims in a notebook (``presentable``), left-aligned text."""
    from IPython.display import display

    display(presentable(frame).style.set_properties(**{"text-align": "left"}))
