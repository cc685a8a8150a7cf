"""Speed of the Open Images challenge metric (``acsl.evaluation.openimages_eval``) on 5,000 images × 500
classes × 100 detections per image (issue: "a benchmark of the metric's speed").

Synthetic but shaped like the challenge: a two-level hierarchy (50 parents of 9 children each), 6 boxes
per image on average of long-tailed classes, 10 % of them group-of, verified positive and negative
image-level labels, and 100 detections per image, half of them jittered copies of ground-truth boxes.
Printed: seconds per evaluation and the ratio against the flat metric (no hierarchy) run in the same
process; the hierarchy version also expands every detection to its parent.

    python benchmarks/bench_openimages_metric.py [--images 5000] [--classes 500] [--detections 100]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from acsl.data.hierarchy import ClassHierarchy
from acsl.evaluation.openimages_eval import evaluate_openimages


def synthetic(num_images: int, num_classes: int, per_image: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    parents = num_classes // 10
    hierarchy = ClassHierarchy({c: ([] if c <= parents else [1 + (c - parents - 1) % parents])
                                for c in range(1, num_classes + 1)})
    weights = 1.0 / np.arange(1, num_classes - parents + 1) ** 1.1  # long-tailed leaf classes
    weights /= weights.sum()
    images, annotations, detections = [], [], []
    for image_id in range(1, num_images + 1):
        count = rng.integers(1, 12)
        classes = parents + 1 + rng.choice(num_classes - parents, size=count, p=weights)
        xy = rng.uniform(0, 400, size=(count, 2))
        wh = rng.uniform(20, 200, size=(count, 2))
        for c, (x, y), (w, h) in zip(classes, xy, wh):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(c),
                                "bbox": [x, y, w, h], "is_group_of": bool(rng.random() < 0.1)})
        negatives = rng.integers(1, num_classes + 1, size=5)
        images.append({"id": image_id, "pos_category_ids": sorted(set(classes.tolist())),
                       "neg_category_ids": sorted(set(negatives.tolist()) - set(classes.tolist()))})
        near = rng.integers(0, count, size=per_image // 2)
        boxes = np.concatenate([np.c_[xy[near] + rng.normal(0, 8, (len(near), 2)), wh[near] * rng.uniform(0.8, 1.2, (len(near), 2))],
                                np.c_[rng.uniform(0, 400, (per_image - len(near), 2)), rng.uniform(20, 200, (per_image - len(near), 2))]])
        labels = np.concatenate([classes[near], rng.integers(1, num_classes + 1, size=per_image - len(near))])
        for box, label, score in zip(boxes, labels, rng.random(per_image)):
            detections.append({"image_id": image_id, "category_id": int(label), "bbox": box.tolist(), "score": float(score)})
    return {"images": images, "annotations": annotations}, detections, hierarchy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--classes", type=int, default=500)
    parser.add_argument("--detections", type=int, default=100)
    args = parser.parse_args()
    started = time.perf_counter()
    truth, detections, hierarchy = synthetic(args.images, args.classes, args.detections)
    print(f"{args.images} images, {args.classes} classes, {len(truth['annotations'])} boxes, {len(detections)} detections "
          f"(generated in {time.perf_counter() - started:.1f} s)")
    timings = {}
    for name, kwargs in (("flat (baseline)", {}), ("hierarchy-expanded", {"hierarchy": hierarchy})):
        started = time.perf_counter()
        result = evaluate_openimages(truth, detections, **kwargs)
        timings[name] = time.perf_counter() - started
        print(f"{name:20s} {timings[name]:7.2f} s   AP50 {100 * result['AP50']:.2f}   "
              f"{timings[name] / timings['flat (baseline)']:.2f}x   "
              f"{len(detections) / timings[name] / 1e3:.0f}k detections/s")


if __name__ == "__main__":
    main()
