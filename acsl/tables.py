"""Tables of our runs next to the paper's numbers (the report's side-by-side format)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .io import atomic_output

# Our metric keys → the paper's column names.
PAPER_COLUMN = {"AP": "mAP", "APr": "APr", "APc": "APc", "APf": "APf", "AP50": "AP50", "AP75": "AP75",
                "APs": "APs", "APm": "APm", "APl": "APl"}


def side_by_side(ours: pd.DataFrame, paper: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Interleave ``ours`` and ``paper`` column by column: (mAP, ours), (mAP, paper), (APr, ours), ...

    Both frames share an index; a row the paper has but we did not run shows NaN under "ours".
    """
    index = ours.index.union(paper.index, sort=False)
    frame = pd.concat(
        {(column, source): table.reindex(index)[column] for column in columns
         for source, table in (("ours", ours), ("paper", paper))},
        axis=1,
    )
    frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=["metric", "source"])
    return frame


def metrics_row(record: Mapping[str, Any]) -> dict[str, float]:
    """One run's metrics (percent) under the paper's column names."""
    return {PAPER_COLUMN[key]: value for key, value in record["metrics"].items() if key in PAPER_COLUMN}


def save_csv(frame: pd.DataFrame, path: str | Path, profile: str | None = None) -> Path:
    """Write ``frame`` as CSV atomically (nothing half-written if interrupted). ``profile``: the profile the
    numbers come from, recorded as a last column ``profile`` so that a CSV read on its own names it."""
    path = Path(path)
    if profile is not None:
        frame = frame.copy()
        key = ("profile",) + ("",) * (frame.columns.nlevels - 1) if frame.columns.nlevels > 1 else "profile"
        frame[key] = profile
    with atomic_output(path) as tmp:
        frame.to_csv(tmp)
    return path


def timing_frame(records: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Wall time per run and stage, in seconds: training (stage 0 = the pretrained start, 1 or 2), the
    one-time caches a fast stage 2 builds (training and validation box-head features; 0 when reused), and
    evaluation."""
    rows = []
    for label, record in records.items():
        timing = record.get("timing", {})
        rows.append({"run": label, "stage": record["spec"]["stage"], "train_s": timing.get("train_s", float("nan")),
                     "cache_s": timing.get("cache_s", 0.0) + timing.get("val_cache_s", 0.0),
                     "eval_s": timing.get("eval_s", float("nan"))})
    return pd.DataFrame(rows).set_index("run")


#: The column under each metric holding the half-width of ours' 95 % interval over seeds.
INTERVAL = "± 95% CI"


def seed_summary(frames: Mapping[int, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(mean, half-width of the 95 % t interval) over seeds of per-seed frames with the same index and
    columns: d̄ and t(0.975, n − 1) · s / √n (``acsl.verdicts.t_quantile_975``), n the seeds where the value
    is defined. The half-width is NaN with fewer than two defined values."""
    from .verdicts import t_quantile_975

    stacked = pd.concat(dict(frames), names=["seed"])
    grouped = stacked.groupby(level=list(range(1, stacked.index.nlevels)), sort=False, dropna=False)
    mean, spread, count = grouped.mean(), grouped.std(ddof=1), grouped.count()
    factor = count.apply(lambda column: column.map(lambda n: t_quantile_975(int(n) - 1) / n ** 0.5 if n >= 2
                                                   else float("nan")))
    first = next(iter(frames.values()))
    return mean.reindex(first.index), (spread * factor).reindex(first.index)


def side_by_side_interval(mean: pd.DataFrame, half_width: pd.DataFrame, paper: pd.DataFrame,
                          columns: tuple[str, ...]) -> pd.DataFrame:
    """``side_by_side`` with ours' interval: (mAP, ours), (mAP, ± 95% CI), (mAP, paper), ..."""
    index = mean.index.union(paper.index, sort=False)
    frame = pd.concat(
        {(column, source): table.reindex(index)[column] for column in columns
         for source, table in (("ours", mean), (INTERVAL, half_width), ("paper", paper))},
        axis=1,
    )
    frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=["metric", "source"])
    return frame


def number(value: float, signed: bool = False, digits: int = 2) -> str:
    """A number for prose: ``12.34`` (``+1.20`` with ``signed``), and "undefined" for a value the profile
    cannot define (NaN: no ground truth of that group or size), never "nan"."""
    if value is None or pd.isna(value):
        return "undefined"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
