"""The Open Images challenge detection metric (docs/ARCHITECTURE.md, "Evaluation rules"; Kuznetsova et al.,
IJCV 2020, §5.2; the rules of the challenge's ``OpenImagesDetectionChallengeEvaluator``): AP at IoU 0.5
per class, mean over classes.

Rules, each applied here:
1. **Hierarchy.** Ground-truth boxes and detections of a class also count for all its ancestors; positive
   image-level labels spread to ancestors, verified negative ones to descendants (``ClassHierarchy``).
2. **Verified labels.** On an image, a class is evaluated only if it is verified there: a positive or
   negative image-level label, or a class with a ground-truth box. Detections of any other class on
   that image are ignored (neither true nor false positives).
3. **Matching.** Per image and class, detections in decreasing score; each takes the non-group-of box of
   highest IoU and is a true positive if that IoU ≥ 0.5 and the box is not taken yet, else a false positive.
4. **Group-of boxes.** A detection that is not a true positive and whose intersection with a group-of box
   covers ≥ 0.5 of the detection's own area (IoA) is matched to that group: all detections matched to one
   group-of box count together as **one** true positive, scored with their highest score; the rest of them
   are ignored. Each group-of box is one ground-truth instance; an unmatched one is a miss.
5. **AP.** Precision made monotone (non-increasing in recall), then the area under the precision-recall
   steps (VOC 2010+ style); the mean runs over the classes that have ground truth.

Inputs: ground truth in the project's internal Open-Images form (LVIS-like: ``images`` with
``pos_category_ids`` / ``neg_category_ids``, ``annotations`` with ``bbox`` [x, y, w, h] and ``is_group_of``),
detections as LVIS results (``image_id``, ``category_id``, ``bbox``, ``score``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..data.hierarchy import ClassHierarchy


def _xyxy(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    x, y, w, h = bbox
    return x, y, x + w, y + h


def _areas(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def _intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.clip(width, 0, None) * np.clip(height, 0, None)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[len(a), len(b)] intersection over union of xyxy boxes."""
    inter = _intersections(a, b)
    union = _areas(a)[:, None] + _areas(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def ioa(detections: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """[len(detections), len(groups)] intersection over the detection's own area (rule 4)."""
    inter = _intersections(detections, groups)
    area = _areas(detections)[:, None]
    return np.where(area > 0, inter / np.where(area > 0, area, 1), 0.0)


def match_image_class(scores: np.ndarray, boxes: np.ndarray, gt_boxes: np.ndarray, gt_group_of: np.ndarray,
                      threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Rules 3–4 for one image and class: (scores, is-true-positive) of the entries that count — the
    detections that are not ignored, plus one entry per group-of box that some detection matched."""
    order = np.argsort(-scores, kind="stable")
    scores, boxes = scores[order], boxes[order]
    n = len(scores)
    true_positive = np.zeros(n, dtype=bool)
    matched_to_group = np.zeros(n, dtype=bool)
    single, group = gt_boxes[~gt_group_of], gt_boxes[gt_group_of]
    if len(single):
        overlaps = iou(boxes, single)
        best = overlaps.argmax(1)
        taken = np.zeros(len(single), dtype=bool)
        for i in range(n):
            g = best[i]
            if overlaps[i, g] >= threshold and not taken[g]:
                true_positive[i] = taken[g] = True
    group_scores = np.empty(0)
    if len(group):
        coverage = ioa(boxes, group)
        best = coverage.argmax(1)
        best_score = np.full(len(group), -np.inf)
        for i in range(n):
            g = best[i]
            if not true_positive[i] and coverage[i, g] >= threshold:
                matched_to_group[i] = True
                best_score[g] = max(best_score[g], scores[i])
        group_scores = best_score[np.isfinite(best_score)]
    kept = ~matched_to_group
    return (np.concatenate([scores[kept], group_scores]),
            np.concatenate([true_positive[kept], np.ones(len(group_scores), dtype=bool)]))


def average_precision(scores: np.ndarray, true_positive: np.ndarray, num_ground_truth: int) -> float:
    """Rule 5: area under the monotone precision-recall curve; NaN without ground truth."""
    if num_ground_truth == 0:
        return float("nan")
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    tp = true_positive[order].astype(np.float64)
    cum_tp = np.cumsum(tp)
    precision = cum_tp / np.arange(1, len(tp) + 1)
    recall = cum_tp / num_ground_truth
    precision = np.concatenate([[0.0], precision, [0.0]])
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.nonzero(recall[1:] != recall[:-1])[0] + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


def _expanded(classes: Sequence[int], hierarchy: ClassHierarchy | None) -> Sequence[int]:
    return classes if hierarchy is None else [c for k in classes for c in hierarchy.with_ancestors(k)]


def evaluate_openimages(ground_truth: Mapping[str, Any], detections: Sequence[Mapping[str, Any]],
                        hierarchy: ClassHierarchy | None = None, iou_threshold: float = 0.5,
                        expand_detections: bool = True) -> dict[str, Any]:
    """Open Images challenge AP (module docstring). ``hierarchy`` over category ids (None: flat labels);
    ``expand_detections`` (rule 1 for detections; the ground truth is always expanded): right for a detector
    that predicts leaf classes only; a multi-label detector that scores the parents itself should pass False
    (the challenge's own evaluator expands only the ground truth), or every object gets a duplicate parent box.

    Returns ``{"AP50": mean AP over classes with ground truth, "per_class_AP": {category id: AP},
    "num_ground_truth": {category id: count}}``; AP values are fractions (×100 for percent).
    """
    images = {int(image["id"]): image for image in ground_truth["images"]}
    # Rule 1–2: verified classes per image, and ground truth keyed by (image, class).
    verified: dict[int, set[int]] = {}
    for image_id, image in images.items():
        positive = set(image.get("pos_category_ids", ()))
        negative = set(image.get("neg_category_ids", ()))
        if hierarchy is not None:
            positive, negative = hierarchy.expand_positive(positive), hierarchy.expand_negative(negative)
        verified[image_id] = positive | negative
    truth: dict[tuple[int, int], list[tuple[tuple[float, ...], bool]]] = defaultdict(list)
    for annotation in ground_truth["annotations"]:
        image_id = int(annotation["image_id"])
        if image_id not in images:
            raise ValueError(f"annotation {annotation.get('id')} refers to unknown image {image_id}")
        box, group_of = _xyxy(annotation["bbox"]), bool(annotation.get("is_group_of", False))
        for c in _expanded([int(annotation["category_id"])], hierarchy):
            truth[(image_id, c)].append((box, group_of))
            verified[image_id].add(c)
    num_ground_truth: dict[int, int] = defaultdict(int)
    for (_, c), boxes in truth.items():
        num_ground_truth[c] += len(boxes)

    found: dict[tuple[int, int], list[tuple[float, tuple[float, ...]]]] = defaultdict(list)
    for detection in detections:
        image_id = int(detection["image_id"])
        if image_id not in verified:
            raise ValueError(f"a detection refers to image {image_id}, which the ground truth does not have")
        classes = [int(detection["category_id"])]
        if expand_detections:
            classes = _expanded(classes, hierarchy)
        for c in classes:
            if c in verified[image_id]:  # rule 2: otherwise ignored
                found[(image_id, c)].append((float(detection["score"]), _xyxy(detection["bbox"])))

    per_class_scores: dict[int, list[np.ndarray]] = defaultdict(list)
    per_class_tp: dict[int, list[np.ndarray]] = defaultdict(list)
    for key, entries in found.items():
        scores = np.fromiter((s for s, _ in entries), dtype=np.float64, count=len(entries))
        if key in truth:
            boxes = np.asarray([b for _, b in entries], dtype=np.float64)
            gt_boxes = np.asarray([b for b, _ in truth[key]], dtype=np.float64)
            gt_group_of = np.asarray([g for _, g in truth[key]], dtype=bool)
            scores, tp = match_image_class(scores, boxes, gt_boxes, gt_group_of, iou_threshold)
        else:
            tp = np.zeros(len(scores), dtype=bool)  # a verified class without boxes: every detection is false
        per_class_scores[key[1]].append(scores)
        per_class_tp[key[1]].append(tp)

    per_class_ap = {}
    for c in sorted(set(num_ground_truth) | set(per_class_scores)):
        scores = np.concatenate(per_class_scores[c]) if per_class_scores[c] else np.empty(0)
        tp = np.concatenate(per_class_tp[c]) if per_class_tp[c] else np.empty(0, dtype=bool)
        per_class_ap[c] = average_precision(scores, tp, num_ground_truth.get(c, 0))
    with_truth = [ap for c, ap in per_class_ap.items() if num_ground_truth.get(c, 0) > 0]
    return {"AP50": float(np.mean(with_truth)) if with_truth else float("nan"),
            "per_class_AP": {c: ap for c, ap in per_class_ap.items() if num_ground_truth.get(c, 0) > 0},
            "num_ground_truth": dict(num_ground_truth)}
