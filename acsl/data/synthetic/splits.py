"""One split of the synthetic benchmark: categories per image, drawn images, LVIS records.

Each category gets its target number of distinct images (least-loaded images first). A present category
has 1 + Poisson(m − 1) annotated instances, m its mean instances per image (``curve.instance_means``:
1.45 in the tail, more in the compressed frequent range), up to ``max_objects_per_image`` in all. Federated fields
(docs/ARCHITECTURE.md, "The synthetic benchmark"; LVIS's federated annotation, "Evaluation rules"):
``neg_category_ids`` are up to ``MAX_NEG_CATEGORIES`` categories truly absent from the image;
``not_exhaustive_category_ids``: on about ``NOT_EXHAUSTIVE_FRACTION`` of images one extra instance
of a present category is drawn but deliberately not annotated, and that category is listed.
Annotations: ``bbox`` = [x, y, w, h] in pixels (pixel-edge convention), ``area`` = w * h of the box,
``segmentation`` = the box as one polygon (the lvis API requires the key), ``iscrowd`` = 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from acsl.config import SyntheticConfig
from acsl.data.stats import frequency_from_image_count

from .curve import MAX_CATEGORIES_PER_IMAGE
from .render import render_image

__all__ = [
    "MAX_NEG_CATEGORIES",
    "NOT_EXHAUSTIVE_FRACTION",
    "assign_categories",
    "generate_split",
    "category_records",
]

MAX_NEG_CATEGORIES = 5
NOT_EXHAUSTIVE_FRACTION = 0.05

_MARKING_TEXT = {
    "plain": "no marking",
    "striped": "diagonal stripes",
    "dotted": "a small central dot",
    "bordered": "a thin contrasting border",
}


def assign_categories(
    targets: dict[int, int], num_images: int, cap: int, rng: np.random.Generator
) -> list[list[int]]:
    """Give each category ``targets[cid]`` distinct images, least-loaded images first.

    Categories are placed in decreasing target order; ties and near-ties between images are broken
    at random (jitter < 2), so images hold roughly 2–5 categories. Images never exceed ``cap``
    categories; a target that cannot fit is truncated.
    """
    load = np.zeros(num_images, dtype=float)
    per_image: list[list[int]] = [[] for _ in range(num_images)]
    for cid in sorted(targets, key=lambda c: (-targets[c], c)):
        key = load + rng.random(num_images) * 1.5
        key[load >= cap] = np.inf
        k = min(targets[cid], int(np.isfinite(key).sum()))
        if k <= 0:
            continue
        chosen = np.argpartition(key, k - 1)[:k] if k < num_images else np.arange(num_images)
        for im in np.sort(chosen):
            per_image[int(im)].append(cid)
            load[im] += 1
    return per_image


def _plan_objects(
    cats: list[int], means: dict[int, float], max_obj: int, rng: np.random.Generator
) -> tuple[list[tuple[int, bool]], int | None]:
    """The (category id, annotated) objects of one image, and the category of the deliberately
    unannotated instance (``None`` when there is none): one instance of every present category, then each
    category's 1 + Poisson(mean − 1) − 1 extra instances, in category order, up to ``max_obj``."""
    objects: list[tuple[int, bool]] = [(c, True) for c in cats]
    for c in cats:
        extra = int(rng.poisson(means[c] - 1.0))
        objects.extend([(c, True)] * max(0, min(extra, max_obj - len(objects))))
    hidden = None
    if cats and len(objects) < max_obj and rng.random() < NOT_EXHAUSTIVE_FRACTION:
        hidden = int(cats[int(rng.integers(len(cats)))])
        objects.append((hidden, False))
    return objects, hidden


def _negative_ids(all_ids: np.ndarray, cats: list[int], rng: np.random.Generator) -> list[int]:
    """``neg_category_ids``: 1..MAX_NEG_CATEGORIES categories truly absent from the image, sorted."""
    absent = np.setdiff1d(all_ids, np.array(cats, dtype=int))
    n_neg = min(len(absent), int(rng.integers(1, MAX_NEG_CATEGORIES + 1)))
    return sorted(int(c) for c in rng.choice(absent, size=n_neg, replace=False)) if n_neg else []


def _box_annotations(
    drawn: list[tuple[int, list[float], bool]], image_id: int, first_ann_id: int
) -> list[dict[str, Any]]:
    """LVIS ``annotations`` records of the annotated drawn objects, numbered from ``first_ann_id``."""
    anns = []
    for cid, (x, y, w, h), annotated in drawn:
        if not annotated:
            continue
        anns.append({
            "id": first_ann_id + len(anns),
            "image_id": image_id,
            "category_id": int(cid),
            "bbox": [x, y, w, h],
            "area": w * h,
            "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
            "iscrowd": 0,
        })
    return anns


def generate_split(
    split: str, specs: list[dict[str, Any]], num_images: int, first_image_id: int,
    first_ann_id: int, config: SyntheticConfig, image_dir: Path, rng: np.random.Generator,
    pbar: Any,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Draw and save one split's images; return its LVIS ``images`` and ``annotations`` lists."""
    target_key = "train_target" if split == "train" else "val_target"
    targets = {s["id"]: s[target_key] for s in specs}
    means = {s["id"]: s["instances_per_image"] for s in specs}
    specs_by_id = {s["id"]: s for s in specs}
    all_ids = np.array(sorted(specs_by_id))
    max_obj = config.max_objects_per_image
    cap = min(MAX_CATEGORIES_PER_IMAGE, max_obj)
    per_image = assign_categories(targets, num_images, cap, rng)
    size = config.image_size
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    for k in range(num_images):
        image_id = first_image_id + k
        cats = sorted(per_image[k])
        objects, hidden = _plan_objects(cats, means, max_obj, rng)
        pixels, drawn = render_image(specs_by_id, objects, size, rng)

        file_name = f"{image_id:06d}.png"
        Image.fromarray(pixels).save(image_dir / file_name, format="PNG", compress_level=1)
        neg = _negative_ids(all_ids, cats, rng)
        not_exhaustive = (
            [hidden] if hidden is not None and any(c == hidden and not a for c, _, a in drawn) else []
        )
        images.append({
            "id": image_id,
            "file_name": file_name,
            "width": size,
            "height": size,
            "neg_category_ids": neg,
            "not_exhaustive_category_ids": not_exhaustive,
        })
        anns.extend(_box_annotations(drawn, image_id, first_ann_id + len(anns)))
        if pbar is not None:
            pbar.update(1)
    return images, anns


def category_records(
    specs: list[dict[str, Any]], train_anns: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """LVIS category dicts; frequency by LVIS's rule from the ACTUAL train image counts.

    ``image_count`` / ``instance_count`` are the actual train counts; the val file carries the same
    records (as LVIS's val file carries the train statistics).
    """
    img_sets: dict[int, set[int]] = {s["id"]: set() for s in specs}
    inst: dict[int, int] = {s["id"]: 0 for s in specs}
    for a in train_anns:
        img_sets[a["category_id"]].add(a["image_id"])
        inst[a["category_id"]] += 1
    records = []
    for s in specs:
        n_img = len(img_sets[s["id"]])
        marking_text = _MARKING_TEXT[s["marking"]]
        records.append({
            "id": s["id"],
            "name": s["name"],
            "synset": f"synthetic.{s['name']}.n.01",
            "synonyms": [s["name"]],
            "def": f"a {s['color']} {s['shape']} with {marking_text} (synthetic category)",
            "frequency": frequency_from_image_count(n_img),
            "image_count": n_img,
            "instance_count": inst[s["id"]],
            "shape": s["shape"],
            "color": s["color"],
            "marking": s["marking"],
            "lookalike_of": s["lookalike_of"],
            "lvis_curve_source": s["lvis_curve_source"],
        })
    return records
