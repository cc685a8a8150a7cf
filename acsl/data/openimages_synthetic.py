"""A synthetic Open-Images-style set for the ``smoke``/``quick`` scale of the Open Images track.

It starts from the synthetic long-tail benchmark generated with the Open Images count curve
(``SyntheticConfig(curve="openimages")``) and adds what distinguishes Open Images from LVIS
(Kuznetsova et al., IJCV 2020):

- **a class hierarchy**: categories that share a shape get a parent class named after the shape
  ("any circle"), as "Cat" sits under "Animal"; the parents are classes of their own, and a share
  ``parent_box_fraction`` of their children's boxes is labelled with the parent only, as annotators
  sometimes stop at a general class;
- **group-of boxes**: where an image holds two or more boxes of one class, with probability
  ``group_of_fraction`` they are replaced by one box around all of them with ``is_group_of`` set;
- **image-level labels**: ``pos_category_ids`` are the classes with a box in the image;
  ``neg_category_ids`` the verified negatives, the generator's truly absent classes (LVIS's
  ``neg_category_ids``) and every parent all of whose children are among them.

Each class's ``image_count``, ``instance_count`` and ``frequency`` group are those of the labels it is
trained on, ancestors expanded, with the groups in the real Challenge 2019 shares
(``acsl.data.openimages_groups``). The result keeps the LVIS fields (``frequency`` and the federated lists), so the LVIS loaders read it,
and adds ``hierarchy`` (category id → parent ids) and ``is_group_of`` per box: the internal Open Images
form that ``acsl.data.openimages.read_openimages`` also produces.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_write_json
from .hierarchy import ClassHierarchy
from .openimages_groups import expanded_counts, openimages_groups

#: Bumped whenever what ``openimages_style`` writes for the same benchmark changes; older files are rewritten.
STYLE_VERSION = "acsl-openimages-style-2"  # 2: counts on expanded labels, groups in the real shares


def openimages_style(lvis: dict[str, Any], seed: int = 0, group_of_fraction: float = 0.5,
                     parent_box_fraction: float = 0.1, parents: dict[str, int] | None = None) -> dict[str, Any]:
    """The Open-Images-style version of one split of the synthetic benchmark (module docstring).
    ``parents`` (shape → parent id) makes val use train's parent ids; the train call creates them."""
    rng = np.random.default_rng(seed)
    categories = sorted(lvis["categories"], key=lambda c: c["id"])
    by_shape: dict[str, list[int]] = defaultdict(list)
    for category in categories:
        by_shape[category["shape"]].append(category["id"])
    next_id = max(c["id"] for c in categories) + 1
    if parents is None:
        parents = {}
        for shape in sorted(by_shape):
            if len(by_shape[shape]) >= 2:
                parents[shape] = next_id
                next_id += 1
    parent_of = {cid: parents[shape] for shape, ids in by_shape.items() if shape in parents for cid in ids}
    children_of: dict[int, list[int]] = defaultdict(list)
    for child, parent in parent_of.items():
        children_of[parent].append(child)

    boxes_of: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for annotation in lvis["annotations"]:
        boxes_of[(annotation["image_id"], annotation["category_id"])].append(annotation)
    annotations = []
    for (image_id, category_id), boxes in sorted(boxes_of.items()):
        if len(boxes) >= 2 and rng.random() < group_of_fraction:
            x0 = min(b["bbox"][0] for b in boxes)
            y0 = min(b["bbox"][1] for b in boxes)
            x1 = max(b["bbox"][0] + b["bbox"][2] for b in boxes)
            y1 = max(b["bbox"][1] + b["bbox"][3] for b in boxes)
            boxes = [{**boxes[0], "bbox": [x0, y0, x1 - x0, y1 - y0], "is_group_of": True}]
        for box in boxes:
            label = category_id
            if category_id in parent_of and rng.random() < parent_box_fraction:
                label = parent_of[category_id]
            w, h = box["bbox"][2], box["bbox"][3]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": label,
                                "bbox": list(box["bbox"]), "area": w * h, "iscrowd": 0,
                                "segmentation": [[box["bbox"][0], box["bbox"][1], box["bbox"][0] + w, box["bbox"][1],
                                                  box["bbox"][0] + w, box["bbox"][1] + h, box["bbox"][0], box["bbox"][1] + h]],
                                "is_group_of": bool(box.get("is_group_of", False))})

    present: dict[int, set[int]] = defaultdict(set)
    for annotation in annotations:
        present[annotation["image_id"]].add(annotation["category_id"])
    images = []
    for image in lvis["images"]:
        negatives = set(image.get("neg_category_ids", ()))
        negatives |= {p for p, kids in children_of.items() if all(k in negatives for k in kids)}
        images.append({**image, "pos_category_ids": sorted(present[image["id"]]),
                       "neg_category_ids": sorted(negatives - present[image["id"]])})

    records = [{**c} for c in categories]
    for shape, pid in sorted(parents.items(), key=lambda item: item[1]):
        records.append({"id": pid, "name": f"any_{shape}", "synset": f"synthetic.any_{shape}.n.01",
                        "synonyms": [f"any_{shape}"], "def": f"any {shape} (parent class)", "shape": shape,
                        "color": None, "marking": None, "lookalike_of": None})
    hierarchy = {str(r["id"]): ([parent_of[r["id"]]] if r["id"] in parent_of else []) for r in records}
    # counts and groups on the labels each class is trained on (acsl.data.openimages_groups)
    image_counts, instance_counts = expanded_counts(annotations, ClassHierarchy.from_category_json(hierarchy),
                                                    [r["id"] for r in records])
    groups = openimages_groups(image_counts, instance_counts)
    for record in records:
        record["image_count"] = image_counts[record["id"]]
        record["instance_count"] = instance_counts[record["id"]]
        record["frequency"] = groups[record["id"]]
    return {"info": {**lvis.get("info", {}), "style": STYLE_VERSION, "seed": seed}, "images": images, "annotations": annotations,
            "categories": records, "hierarchy": hierarchy}


def _written_by_this_version(path: Path, seed: int) -> bool:
    if not path.is_file():
        return False
    try:
        info = json.loads(path.read_text()).get("info", {})
    except ValueError:  # cut short: write it again
        return False
    return info.get("style") == STYLE_VERSION and info.get("seed") in (seed, seed + 1)


def openimages_files(root: str | Path) -> tuple[Path, Path]:
    """(train, val) paths of the Open-Images-style annotation files of a synthetic benchmark at ``root``."""
    folder = Path(root) / "annotations"
    return folder / "openimages_train.json", folder / "openimages_val.json"


def write_openimages_style(bench, seed: int = 0) -> tuple[Path, Path]:
    """Write the Open-Images-style train and val files next to a generated synthetic benchmark
    (``SyntheticBenchmark``), atomically; an existing pair is kept. Val uses train's parent classes,
    so both splits share one category list."""
    train_path, val_path = openimages_files(bench.root)
    if all(_written_by_this_version(p, seed) for p in (train_path, val_path)):
        return train_path, val_path
    train = openimages_style(json.loads(Path(bench.train_json).read_text()), seed)
    parents = {r["shape"]: r["id"] for r in train["categories"] if r["name"].startswith("any_")}
    val = openimages_style(json.loads(Path(bench.val_json).read_text()), seed + 1, parents=parents)
    # LVIS's convention: the val file carries the train statistics of each category.
    train_stats = {r["id"]: r for r in train["categories"]}
    for record in val["categories"]:
        for key in ("image_count", "instance_count", "frequency"):
            record[key] = train_stats[record["id"]][key]
    atomic_write_json(train_path, train)
    atomic_write_json(val_path, val)
    return train_path, val_path


def hierarchy_ancestors(data: dict[str, Any], label_of: dict[int, int]) -> list[list[int]]:
    """Per label 1..C (``label_of``: category id → label), the labels of its ancestors, from an internal
    Open Images form's ``hierarchy``; what ``ClassificationLoss.set_label_hierarchy`` takes."""
    hierarchy = ClassHierarchy.from_category_json(data.get("hierarchy", {}))
    ancestors = [[] for _ in label_of]
    for category_id, label in label_of.items():
        ancestors[label - 1] = sorted(label_of[a] for a in hierarchy.ancestors(category_id) if a in label_of)
    return ancestors
