"""Per-category statistics of long-tail detection datasets, and LVIS's frequency rule.

The shipped CSVs under ``data/stats`` hold the real per-category train statistics of LVIS v0.5
and LVIS v1, and the per-class box counts of the Open Images Challenge 2019 train set (500 classes;
no per-class image counts exist for it) — see ``data/stats/SOURCES.md``.  The synthetic benchmark (``acsl.data.synthetic``)
samples its image-count curve from the LVIS v0.5 file (docs/ARCHITECTURE.md, "The synthetic benchmark").

LVIS frequency rule (Gupta et al., LVIS, CVPR 2019, §3): a category is *rare* if it appears in
1–10 training images, *common* in 11–100, *frequent* in more than 100.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

STATS_DIR: Path = Path(__file__).resolve().parents[2] / "data" / "stats"

_STAT_FILES: dict[str, str] = {
    "lvis_v0.5": "lvis_v0.5_train_categories.csv",
    "lvis_v1": "lvis_v1_train_categories.csv",
}

_OPENIMAGES_FILE = "openimages_train_classes.csv"

RARE_MAX_IMAGES = 10
COMMON_MAX_IMAGES = 100


def load_category_stats(name: str = "lvis_v0.5") -> pd.DataFrame:
    """Load the shipped per-category train statistics of ``name`` ("lvis_v0.5" or "lvis_v1").

    Columns: id, name, synset, frequency, image_count, instance_count.
    """
    if name not in _STAT_FILES:
        raise ValueError(
            f"unknown category-statistics name {name!r}; valid names: {sorted(_STAT_FILES)}"
        )
    path = STATS_DIR / _STAT_FILES[name]
    if not path.is_file():
        raise FileNotFoundError(f"category statistics file for {name!r} not found: {path}")
    return pd.read_csv(path)


def frequency_from_image_count(n: int) -> str:
    """LVIS frequency group from a category's number of training images.

    'r' if n <= 10, 'c' if 11 <= n <= 100, 'f' if n > 100 (LVIS's rule; n = 0 gives 'r').
    """
    n = int(n)
    if n <= RARE_MAX_IMAGES:
        return "r"
    if n <= COMMON_MAX_IMAGES:
        return "c"
    return "f"


def category_image_counts(lvis_json: Mapping[str, Any]) -> dict[int, int]:
    """Number of distinct images per category id, counted from ``lvis_json['annotations']``.

    Every id in ``lvis_json['categories']`` is present (0 when it has no annotation).
    """
    images: dict[int, set[int]] = defaultdict(set)
    for ann in lvis_json.get("annotations", []):
        images[int(ann["category_id"])].add(int(ann["image_id"]))
    counts = {int(c["id"]): 0 for c in lvis_json.get("categories", [])}
    counts.update({cid: len(imgs) for cid, imgs in images.items()})
    return counts


def category_instance_counts(lvis_json: Mapping[str, Any]) -> dict[int, int]:
    """Number of annotations (instances) per category id; 0 for categories without any."""
    counts = {int(c["id"]): 0 for c in lvis_json.get("categories", [])}
    for ann in lvis_json.get("annotations", []):
        cid = int(ann["category_id"])
        counts[cid] = counts.get(cid, 0) + 1
    return counts


def load_openimages_stats() -> pd.DataFrame:
    """Load the shipped Open Images Challenge 2019 train statistics (500 classes).

    Columns: id (1-based class order), mid (Freebase MID, unique), name (display name; "Bench" and
    "Mouse" occur twice under different MIDs), instance_count (bounding boxes per class, not
    expanded along the class hierarchy). There is no image_count column: per-class image counts
    were not published (``data/stats/SOURCES.md`` §3).
    """
    path = STATS_DIR / _OPENIMAGES_FILE
    if not path.is_file():
        raise FileNotFoundError(f"Open Images class statistics file not found: {path}")
    return pd.read_csv(path)


def _sorted_desc(df: pd.DataFrame, column: str) -> np.ndarray:
    if column not in df.columns:
        raise ValueError(
            f"statistics table has no {column!r} column (columns: {list(df.columns)}); "
            "Open Images statistics carry instance counts only"
        )
    values = df[column].to_numpy(dtype=np.int64)
    return np.sort(values, kind="stable")[::-1].copy()


def sorted_image_counts(df: pd.DataFrame) -> np.ndarray:
    """Per-category image counts of ``df`` sorted in descending order (int64), e.g. for Figure 1.

    Raises ``ValueError`` when ``df`` has no ``image_count`` column (Open Images).
    """
    return _sorted_desc(df, "image_count")


def sorted_instance_counts(df: pd.DataFrame) -> np.ndarray:
    """Per-category instance (box) counts of ``df`` sorted in descending order (int64), e.g. for
    Figure 2 (LVIS vs Open Images on a log10 axis)."""
    return _sorted_desc(df, "instance_count")


def equivalent_threshold(threshold: float, reference_counts: Sequence[int], target_counts: Sequence[int]) -> int:
    """The count threshold on ``target_counts`` that puts the same share of classes below it as
    ``threshold`` does on ``reference_counts`` (e.g. Table 1's BAGS dividing lines, stated for LVIS
    v0.5's instance counts, moved to a smaller benchmark's): with q the share of reference classes whose
    count is < ``threshold`` and k = round(q · C_target), the k-th smallest target count (so exactly the
    k smallest fall below it when counts do not tie there); at least 1."""
    reference = np.asarray(reference_counts)
    target = np.sort(np.asarray(target_counts))
    if reference.size == 0 or target.size == 0:
        raise ValueError("equivalent_threshold needs non-empty reference and target counts")
    share = float((reference < threshold).mean())
    k = int(round(share * target.size))
    line = int(target[k]) if k < target.size else int(target[-1]) + 1
    return max(1, line)
