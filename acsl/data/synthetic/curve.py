"""The long-tail count curve of the synthetic benchmark: how many train and val images each category gets.

The ``num_categories`` categories take the counts of a real dataset at evenly spaced quantiles of its
sorted per-class count curve (LVIS v0.5 train image counts, or Open Images' box counts), which are
then fitted into the image budget of the config (docs/ARCHITECTURE.md, "The synthetic benchmark").
"""

from __future__ import annotations

import math

import numpy as np

from acsl.config import SyntheticConfig
from acsl.data.stats import load_category_stats, load_openimages_stats

__all__ = [
    "MEAN_CATEGORIES_PER_IMAGE",
    "MAX_CATEGORIES_PER_IMAGE",
    "VAL_MEAN_CATEGORIES_PER_IMAGE",
    "MIN_VAL_IMAGES_PER_CATEGORY",
    "RARE_TARGET_MAX",
    "FREQUENT_TARGET_MIN",
    "BASE_INSTANCES_PER_IMAGE",
    "curve_quantiles",
    "train_targets",
    "val_targets",
    "instance_means",
]

MEAN_CATEGORIES_PER_IMAGE = 3.5  # train budget used to scale the frequent range
MAX_CATEGORIES_PER_IMAGE = 5
VAL_MEAN_CATEGORIES_PER_IMAGE = 3.0
MIN_VAL_IMAGES_PER_CATEGORY = 3
#: Train targets up to this are rare-curve categories (LVIS: rare = 1-10 images).
RARE_TARGET_MAX = 10
#: Train targets from this on are frequent-curve categories (LVIS: frequent = more than 100 images).
FREQUENT_TARGET_MIN = 101
#: Mean annotated instances of a category in an image that shows it, where the curve is not compressed
#: (rare and common categories: 1 + Poisson(0.45)).
BASE_INSTANCES_PER_IMAGE = 1.45


def curve_quantiles(num_categories: int, curve: str = "lvis_v0.5") -> tuple[list[str], np.ndarray]:
    """(name, count) at evenly spaced quantiles of the sorted count curve: LVIS v0.5's image counts, or
    Open Images' box counts (it publishes no per-class image counts)."""
    if curve == "openimages":
        stats = load_openimages_stats().sort_values(["instance_count", "name"], kind="stable")
        column = "instance_count"
    else:
        stats = load_category_stats("lvis_v0.5").sort_values(["image_count", "name"], kind="stable")
        column = "image_count"
    n = len(stats)
    idx = np.floor((np.arange(num_categories) + 0.5) * n / num_categories).astype(int)
    return list(stats["name"].to_numpy()[idx]), stats[column].to_numpy()[idx].astype(float)


def _compress(counts: np.ndarray, max_f: float, cmax: float) -> np.ndarray:
    """Keep counts <= 100; map (100, cmax] log-linearly and monotonically onto (100, max_f]."""
    out = counts.astype(float).copy()
    hi = counts > 100
    if hi.any() and cmax > 100:
        expo = np.log(counts[hi] / 100.0) / math.log(cmax / 100.0)
        out[hi] = np.maximum(FREQUENT_TARGET_MIN, np.round(100.0 * (max_f / 100.0) ** expo))
    return np.round(out)


def _openimages_targets(counts: np.ndarray, n: int, budget: float) -> np.ndarray:
    """The Open Images curve scaled as a whole into the budget, keeping its shape on a log scale: its
    span max/min shrinks to what the budget can hold."""
    logs = np.log(counts)
    span = min(1.0, math.log(max(2.0, 0.5 * n)) / max(logs.max() - logs.min(), 1e-9))
    targets = np.exp((logs - logs.min()) * span)
    targets = np.maximum(1.0, np.round(targets * budget / targets.sum()))
    return np.clip(targets, 1, max(1.0, 0.5 * n)).astype(int)


def train_targets(config: SyntheticConfig, counts: np.ndarray) -> np.ndarray:
    """Target train image count per curve position.

    LVIS curve: counts <= 100 are kept and the frequent range is compressed log-linearly into
    (100, max_f], ``max_f`` lowered (by bisection) until the total fits ``MEAN_CATEGORIES_PER_IMAGE``
    categories per image; when even that does not fit, the whole curve shrinks proportionally. Open
    Images curve: scaled as a whole into the budget (:func:`_openimages_targets`).
    """
    n = config.num_train_images
    cap = min(MAX_CATEGORIES_PER_IMAGE, config.max_objects_per_image)
    budget = n * min(MEAN_CATEGORIES_PER_IMAGE, 0.7 * cap)
    if config.curve == "openimages":
        return _openimages_targets(counts, n, budget)
    cmax = float(counts.max())
    max_f = max(float(FREQUENT_TARGET_MIN), 0.5 * n)
    targets = _compress(counts, max_f, cmax)
    if targets.sum() > budget and max_f > FREQUENT_TARGET_MIN:
        lo, hi = float(FREQUENT_TARGET_MIN), max_f  # largest max_f that fits the budget
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if _compress(counts, mid, cmax).sum() <= budget:
                lo = mid
            else:
                hi = mid
        targets = _compress(counts, lo, cmax)
    if targets.sum() > budget:  # small configs: shrink the whole curve proportionally
        targets = np.maximum(1.0, np.floor(targets * budget / targets.sum()))
    return np.clip(targets, 1, n).astype(int)


def val_targets(config: SyntheticConfig, train: np.ndarray) -> np.ndarray:
    """Flatter val targets: proportional to train target ** 0.25, at least
    ``min(MIN_VAL_IMAGES_PER_CATEGORY, num_val_images)`` images each."""
    n = config.num_val_images
    lo = min(MIN_VAL_IMAGES_PER_CATEGORY, n)
    w = train.astype(float) ** 0.25
    v = np.round(w * (n * VAL_MEAN_CATEGORIES_PER_IMAGE) / w.sum())
    return np.clip(v, lo, n).astype(int)


def instance_means(config: SyntheticConfig, counts: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Mean annotated instances per image of each curve position (docs/ARCHITECTURE.md, "The synthetic
    benchmark": as long-tailed as LVIS in annotations).

    The image budget compresses the frequent range's image counts (``train_targets``: up to about 10× on
    ``quick``), which would leave the frequent categories far fewer annotations, relative to the tail, than
    LVIS gives them. What the compression takes from a frequent category's images it gets back in instances
    per image: its annotations keep the curve's count × ``BASE_INSTANCES_PER_IMAGE``, the same ratio as the
    uncompressed rare and common categories, so the shares of annotations by group follow the curve's. A
    category whose curve count is at most 100 (LVIS: rare and common) keeps ``BASE_INSTANCES_PER_IMAGE``;
    the Open Images curve, scaled as a whole, keeps it everywhere."""
    means = np.full(len(train), BASE_INSTANCES_PER_IMAGE)
    if config.curve == "openimages":
        return means
    compressed = counts > 100
    means[compressed] *= np.maximum(1.0, counts[compressed] / np.maximum(train[compressed], 1))
    return means
