"""Per-category statistics of long-tail detection datasets, and LVIS's frequency rule.

The shipped CSVs under ``data/stats`` hold the real per-category train statistics of LVIS v0.5
and LVIS v1, and the per-class box counts of the Open Images Challenge 2019 train set (500 classes;
no per-class image counts exist for it) — see ``data/stats/SOURCES.md``.  The synthetic benchmark (``acsl.data.synthetic``)
samples its image-count curve from the LVIS v0.5 file (docs/ARCHITECTURE.md, "The synthetic benchmark").
``split_statistics`` and ``lvis_split_statistics`` state what a detector sees in a train split (group shares
of the annotations, annotations and categories per image), for the benchmark and for LVIS v0.5 / v1 alike.

LVIS frequency rule (Gupta et al., LVIS, CVPR 2019, §3): a category is *rare* if it appears in
1–10 training images, *common* in 11–100, *frequent* in more than 100.
"""

from __future__ import annotations

import json
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

#: Images in each LVIS train split: the length of the ``images`` list of the official
#: ``lvis_v0.5_train.json`` / ``lvis_v1_train.json`` (Gupta et al., LVIS, CVPR 2019; data/stats/SOURCES.md §4).
#: The per-category CSVs do not carry it; the per-image statistics of ``lvis_split_statistics`` need it.
LVIS_TRAIN_IMAGES: dict[str, int] = {"lvis_v0.5": 57_263, "lvis_v1": 100_170}

#: LVIS's frequency groups and the words the split statistics name them by.
FREQUENCY_GROUPS: dict[str, str] = {"r": "rare", "c": "common", "f": "frequent"}


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


def _split_frame(lvis_json: Mapping[str, Any]) -> pd.DataFrame:
    """One row per category of ``lvis_json``: id, name, frequency, image_count, instance_count. A category
    without a ``frequency`` field gets LVIS's rule on its image count in this file."""
    images, instances = category_image_counts(lvis_json), category_instance_counts(lvis_json)
    declared = {int(c["id"]) for c in lvis_json.get("categories", [])}
    undeclared = sorted(set(instances) - declared)
    if undeclared:
        raise ValueError(f"annotations name category ids missing from 'categories': {undeclared[:10]}")
    rows = [{"id": int(c["id"]), "name": str(c.get("name", c["id"])),
             "frequency": c.get("frequency") or frequency_from_image_count(images[int(c["id"])]),
             "image_count": images[int(c["id"])], "instance_count": instances[int(c["id"])]}
            for c in lvis_json.get("categories", [])]
    return pd.DataFrame(rows, columns=["id", "name", "frequency", "image_count", "instance_count"])


def _statistics(categories: pd.DataFrame, num_images: int, num_annotations: int) -> pd.Series:
    """The split statistics of ``split_statistics`` from a per-category table (id, name, frequency,
    image_count, instance_count) and the split's image and annotation totals."""
    if categories.empty:
        raise ValueError("split statistics need at least one category")
    counts = categories["instance_count"].astype("int64")
    stats: dict[str, Any] = {"images": int(num_images), "annotations": int(num_annotations),
                             "categories": len(categories)}
    for group, word in FREQUENCY_GROUPS.items():
        stats[f"{word} categories"] = int((categories["frequency"] == group).sum())
    for group, word in FREQUENCY_GROUPS.items():
        in_group = int(counts[categories["frequency"] == group].sum())
        stats[f"{word} annotations (%)"] = 100.0 * in_group / num_annotations if num_annotations else float("nan")
    stats["annotations per image"] = num_annotations / num_images if num_images else float("nan")
    # Σ_c images containing c = Σ_images distinct categories annotated in it
    stats["categories per image"] = int(categories["image_count"].sum()) / num_images if num_images else float("nan")
    ranked = categories.assign(instance_count=counts)
    largest = ranked.sort_values(["instance_count", "id"], ascending=[False, True], kind="stable").iloc[0]
    smallest = ranked.sort_values(["instance_count", "id"], kind="stable").iloc[0]
    stats["largest category"] = str(largest["name"])
    stats["largest category annotations"] = int(largest["instance_count"])
    stats["smallest category"] = str(smallest["name"])
    stats["smallest category annotations"] = int(smallest["instance_count"])
    stats["categories at the smallest count"] = int((counts == int(smallest["instance_count"])).sum())
    return pd.Series(stats, dtype=object)


def split_statistics(source: Mapping[str, Any] | str | Path) -> pd.Series:
    """Statistics of a train split in the LVIS format (a file or its loaded dict), what a detector trained on it
    sees (docs/ARCHITECTURE.md, "The synthetic benchmark": the benchmark is meant to be as long-tailed as LVIS).

    Index, in order: images, annotations, categories; rare / common / frequent categories (by each category's
    ``frequency`` field, LVIS's groups: Gupta et al., LVIS, CVPR 2019, §3); rare / common / frequent
    annotations (%), the share of all annotations in each group; annotations per image (annotations / images
    in the file, images without annotations included); categories per image (distinct annotated categories
    per image, same denominator); largest and smallest category by annotation count, with their counts (ties:
    the lowest id), and how many categories share the smallest count. Raises ``ValueError`` for a file
    without categories or with annotations of undeclared categories.
    """
    data = json.loads(Path(source).read_text()) if isinstance(source, (str, Path)) else source
    return _statistics(_split_frame(data), len(data.get("images", [])), len(data.get("annotations", [])))


def lvis_split_statistics(name: str = "lvis_v0.5") -> pd.Series:
    """``split_statistics`` of LVIS v0.5 or v1 train ("lvis_v0.5" or "lvis_v1") from the shipped per-category
    statistics (``load_category_stats``) and the split's image count (``LVIS_TRAIN_IMAGES``); the annotation
    total is the CSV's instance_count sum (693,958 and 1,270,141, data/stats/SOURCES.md)."""
    categories = load_category_stats(name)
    return _statistics(categories, LVIS_TRAIN_IMAGES[name], int(categories["instance_count"].sum()))


def statistics_table(columns: Mapping[str, pd.Series], digits: int = 2) -> pd.DataFrame:
    """Split statistics side by side: one column per split (e.g. ours, LVIS v0.5, LVIS v1), one row per
    statistic, fractional values rounded to ``digits``; the index is named "statistic"."""
    table = pd.concat(dict(columns), axis=1)
    table = table.apply(lambda column: column.map(lambda v: round(v, digits) if isinstance(v, float) else v))
    table.index.name = "statistic"
    return table
