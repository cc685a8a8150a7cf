"""ACSL's frequency groups (and EQL's tail) on the Open Images track, in the real dataset's proportions.

ACSL's background schedule (paper §4.2) is stated for LVIS's groups: rare (1–10 training images), common
(11–100), frequent (> 100). Paper §5 does not say how Open Images' classes are grouped. LVIS's absolute
cut-offs on a 1000-image synthetic set make most classes rare or common, while on the real Challenge 2019
train set almost every class is frequent; so ACSL would drop most background negatives here and almost
none there. Our rule (a choice the paper does not make; docs/ARCHITECTURE.md, "Frequency groups on Open
Images"):

1. **Counts on the expanded labels.** A class is trained on its own boxes and on every box of its
   descendants (the challenge's label expansion, ``acsl.data.hierarchy``), so its image and box counts
   are counted on those expanded labels: a parent's count includes its descendants' images.
2. **The real proportions.** The share of classes in each group is what LVIS's rule gives on the real
   Challenge 2019 train counts (``data/stats/openimages_train_classes.csv``, 500 classes). Those are box
   counts, the only per-class counts published, and not expanded. Expansion only raises a count, so it
   adds no class below a cut-off, and the 10 classes with ≤ 100 boxes (household objects from Pressure
   cooker, 14, to Light switch, 97) have no subclass among the 500. Result: 0 rare, 10 common, 490
   frequent (0 %, 2 %, 98 %).
3. **Cut-offs at the same quantiles.** A set of C classes gets round(s_r·C) rare classes and
   round((s_r + s_c)·C) − round(s_r·C) common ones: its classes with the fewest training images (ties:
   fewer boxes, then the lower id); the rest are frequent. So every set, synthetic or real, has the real
   share of each group to within one class.

EQL's tail on this track is the rare and common groups (on LVIS its λ puts the tail at the same line).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from .hierarchy import ClassHierarchy
from .stats import FREQUENCY_GROUPS, frequency_from_image_count, load_openimages_stats

#: Names this rule in the spec hash of every run on the Open Images track, and in the tables.
GROUP_RULE = "openimages-challenge-2019-quantiles-1"


def expanded_counts(annotations: Iterable[Mapping[str, Any]], hierarchy: ClassHierarchy,
                    category_ids: Iterable[int]) -> tuple[dict[int, int], dict[int, int]]:
    """(images, boxes) per category id on the ancestor-expanded labels: a box of class c counts for c and
    for each of its ancestors, once per image for the image count. Every id of ``category_ids`` is present."""
    images: dict[int, set[int]] = defaultdict(set)
    boxes: dict[int, int] = defaultdict(int)
    for annotation in annotations:
        category = int(annotation["category_id"])
        for label in (category, *hierarchy.ancestors(category)):
            images[label].add(int(annotation["image_id"]))
            boxes[label] += 1
    ids = list(category_ids)
    return {c: len(images.get(c, ())) for c in ids}, {c: boxes.get(c, 0) for c in ids}


def challenge_group_shares() -> dict[str, float]:
    """Share of classes per group ('r', 'c', 'f') under LVIS's rule on the real Challenge 2019 train counts
    (module docstring, point 2)."""
    counts = load_openimages_stats()["instance_count"]
    groups = [frequency_from_image_count(n) for n in counts]
    return {group: groups.count(group) / len(groups) for group in FREQUENCY_GROUPS}


def groups_by_quantile(image_counts: Mapping[int, int], instance_counts: Mapping[int, int],
                       shares: Mapping[str, float]) -> dict[int, str]:
    """Group per category id with the classes of fewest images rare, then common, in the given shares
    (module docstring, point 3)."""
    if set(image_counts) != set(instance_counts):
        raise ValueError("image and box counts must cover the same categories")
    order = sorted(image_counts, key=lambda c: (image_counts[c], instance_counts[c], c))
    rare = round(shares["r"] * len(order))
    common = round((shares["r"] + shares["c"]) * len(order)) - rare
    return {c: "r" if k < rare else "c" if k < rare + common else "f" for k, c in enumerate(order)}


def openimages_groups(image_counts: Mapping[int, int], instance_counts: Mapping[int, int]) -> dict[int, str]:
    """The groups of an Open Images track set: ``groups_by_quantile`` in the real Challenge 2019 shares."""
    return groups_by_quantile(image_counts, instance_counts, challenge_group_shares())


def group_rule_note(categories: Iterable[Mapping[str, Any]]) -> str:
    """One sentence for Tables 5–7: the rule and what it gives on this set (``categories`` with
    ``frequency`` and ``image_count``)."""
    categories = list(categories)
    shares = challenge_group_shares()
    sizes = {g: sum(c["frequency"] == g for c in categories) for g in FREQUENCY_GROUPS}
    line = max((c["image_count"] for c in categories if c["frequency"] != "f"), default=None)
    cut = f" (the rare and common ones in at most {line} training images)" if line is not None else ""
    return (f"Frequency groups (ACSL's background schedule, EQL's tail = rare + common): counted on the "
            f"ancestor-expanded labels, in the real Open Images Challenge 2019 shares (LVIS's rule on its "
            f"500 classes: {shares['r']:.0%} rare, {shares['c']:.0%} common, {shares['f']:.0%} frequent), "
            f"by rank of training images: here {sizes['r']} rare, {sizes['c']} common, {sizes['f']} frequent "
            f"of {len(categories)}{cut} (a choice the paper does not state; docs/ARCHITECTURE.md, "
            f"\"Frequency groups on Open Images\").")
