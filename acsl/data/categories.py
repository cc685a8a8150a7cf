"""One category set for a run's train and val files (docs/ARCHITECTURE.md, "How a run flows").

The classifier's columns are the training file's categories in id order, and a detection's column is mapped
back to a category id through the val file's categories in id order. The two agree, category by category,
only when both files hold the same category ids: a val file with one category more (or a train file with one
fewer) shifts every later column onto its neighbour, and the table is silently wrong. So a run whose files
disagree is refused before it trains, naming the ids that differ, and ``acsl data check`` reports it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

SHOWN = 10


class CategoryMismatchError(ValueError):
    """The train and val annotation files hold different category ids; the message names them."""


def category_mismatch(train_ids: Iterable[int], val_ids: Iterable[int], train_file: str | Path,
                      val_file: str | Path) -> str | None:
    """None when both files hold the same category ids; else what differs, naming the files and the first ids."""
    train, val = set(train_ids), set(val_ids)
    if train == val:
        return None

    def listed(ids: set[int]) -> str:
        first = ", ".join(str(i) for i in sorted(ids)[:SHOWN])
        return first + (f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else "")

    parts = [f"{len(ids)} only in {name} ({listed(ids)})"
             for ids, name in ((train - val, f"the train file {train_file}"), (val - train, f"the val file {val_file}")) if ids]
    return (f"the train and val annotation files disagree on the category set ({len(train)} and {len(val)} "
            f"categories): {'; '.join(parts)}. The classifier's columns are the train file's categories and "
            "predictions are mapped back through the val file's, so every category after the first difference "
            "would be scored as another; use the files of one release")


def require_same_categories(train_set, val_set) -> None:
    """Refuse (``CategoryMismatchError``) a train and val set whose files hold different category ids."""
    problem = category_mismatch(train_set.label_to_category_id, val_set.label_to_category_id,
                                train_set.ann_file, val_set.ann_file)
    if problem:
        raise CategoryMismatchError(problem)


def file_category_ids(ann_file: str | Path) -> list[int]:
    """The category ids of an LVIS-format file (``acsl data check`` compares the two splits')."""
    with open(ann_file, encoding="utf-8") as handle:
        return [int(category["id"]) for category in json.load(handle).get("categories", [])]
