"""Per-category statistics of long-tail detection datasets (DESIGN §7, LVIS rules).

The shipped CSVs under ``data/stats`` hold the real per-category train statistics of LVIS v0.5
and LVIS v1 (see ``data/stats/SOURCES.md``).  The synthetic benchmark (``acsl.data.synthetic``)
samples its image-count curve from the LVIS v0.5 file.

LVIS frequency rule (Gupta et al., LVIS, CVPR 2019, §3): a category is *rare* if it appears in
1–10 training images, *common* in 11–100, *frequent* in more than 100.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

STATS_DIR: Path = Path(__file__).resolve().parents[2] / "data" / "stats"

_STAT_FILES: dict[str, str] = {
    "lvis_v0.5": "lvis_v0.5_train_categories.csv",
    "lvis_v1": "lvis_v1_train_categories.csv",
}

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
