"""LVIS box AP with the federated evaluation rules (docs/ARCHITECTURE.md, "Evaluation rules").

The LVIS protocol (Gupta, Dollár & Girshick, "LVIS: A Dataset for Large Vocabulary
Instance Segmentation", CVPR 2019, §"Evaluation details" / federated design) differs
from COCO AP in four ways, all of which hold here:

1. **Per-image detection budget.** At most ``max_dets`` (300) detections per image,
   the top scores *across all categories*, are kept before anything else happens.
   ``faster-coco-eval`` only caps per image *and* category, so this module applies the
   LVIS cut first (:func:`cap_detections_per_image`), keeping the same detections in the
   same order as the official ``lvis`` API's ``LVISResults.limit_dets_per_image`` (a
   stable sort by decreasing score within each image over budget, ties in input order),
   done as one ``np.lexsort`` over all detections rather than a Python sort per image.
2. **Federated filtering.** A detection of category ``c`` on image ``i`` is evaluated
   only if ``c`` is annotated positive on ``i`` (``i`` holds a box of ``c``) or ``c``
   is listed in ``i``'s ``neg_category_ids``; otherwise the image was never verified
   for ``c`` and the detection is dropped.
3. **Non-exhaustive labels.** On an image whose ``not_exhaustive_category_ids`` lists
   ``c``, detections of ``c`` that match no ground truth are ignored (neither true
   nor false positives).
4. **Frequency groups.** APr / APc / APf average the per-category AP over the
   categories whose ``frequency`` field is ``"r"`` / ``"c"`` / ``"f"``; APs / APm /
   APl use the COCO area ranges ``[0, 32²]``, ``[32², 96²]``, ``[96², 1e5²]``.

Rules 2-4 are carried out by ``faster_coco_eval.COCOeval_faster(lvis_style=True)``
(its ``_prepare`` drops unverified detections and marks non-exhaustive ones; its C++
matcher ignores the marked, unmatched ones; the groups come from ``frequency``).
Around it this module adds rule 1 and one detail of the official loader: the official
evaluator selects annotations and detections with ``0 < area < inf``
(``LVIS.get_ann_ids``), so zero-area boxes are dropped here too (after the cap, as
there). After the cap, detections that rule 2 drops (often most) are dropped here with
numpy too, so faster-coco-eval's per-detection Python work sees only those that count.
Detections are validated once, column-wise. ``tests/test_lvis_eval.py`` checks agreement
with ``lvis==0.5.3`` to 1e-4; ``benchmarks/bench_lvis_eval.py`` times both.

All numbers are fractions in ``[0, 1]``; a metric with no ground truth to average
over (the official evaluator's ``-1``) is reported as ``nan``.
"""

from __future__ import annotations

import gc
import itertools
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from collections import namedtuple
from typing import Any

import numpy as np

__all__ = ["METRIC_NAMES", "LVIS_AREA_RANGES", "cap_detections_per_image", "load_lvis_gt", "evaluate_lvis"]

METRIC_NAMES: tuple[str, ...] = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf")

#: COCO/LVIS area ranges in pixels² (LVIS ``Params.area_rng``), "all" excluded.
LVIS_AREA_RANGES: dict[str, list[float]] = {
    "small": [0.0, 32.0**2],
    "medium": [32.0**2, 96.0**2],
    "large": [96.0**2, 1e5**2],
}

_REQUIRED_KEYS: tuple[str, ...] = ("image_id", "category_id", "bbox", "score")
_FREQUENCIES: tuple[str, ...] = ("r", "c", "f")


def _silent(*_args: Any, **_kwargs: Any) -> None:
    return None


def _check_max_dets(max_dets: Any) -> None:
    """Raise ``ValueError`` unless ``max_dets`` is a positive integer (not a bool)."""
    if isinstance(max_dets, bool) or not isinstance(max_dets, numbers.Integral) or max_dets < 1:
        raise ValueError(f"max_dets must be a positive integer, got {max_dets!r}")


def _check_each_detection(detections: Sequence) -> None:
    """Raise ``ValueError`` naming the first bad detection and field (run only when the column-wise check
    of :func:`_detection_arrays` finds a problem or cannot decide)."""
    for index, det in enumerate(detections):
        if not isinstance(det, Mapping):
            raise ValueError(f"detections[{index}] is a {type(det).__name__}, expected a dict")
        for key in _REQUIRED_KEYS:
            if key not in det:
                raise ValueError(f"detections[{index}] is missing key {key!r}")
        bbox = det["bbox"]
        if (isinstance(bbox, (str, bytes)) or not isinstance(bbox, (Sequence, np.ndarray)) or len(bbox) != 4
                or not all(isinstance(v, numbers.Real) and math.isfinite(v) for v in bbox)):
            raise ValueError(f"detections[{index}]['bbox'] must be 4 finite numbers [x, y, w, h], got {bbox!r}")
        if bbox[2] < 0 or bbox[3] < 0:
            raise ValueError(f"detections[{index}]['bbox'] has a negative width or height: {list(bbox)!r}; boxes are "
                             "[x, y, w, h] (convert [x1, y1, x2, y2] boxes: w = x2 - x1, h = y2 - y1)")
        score = det["score"]
        if isinstance(score, bool) or not isinstance(score, numbers.Real) or not math.isfinite(score):
            raise ValueError(f"detections[{index}]['score'] must be a finite number, got {score!r}")


def _only_real(values: Any, allow_bool: bool) -> bool:
    """Whether every value is a real number (``numbers.Real``), judged by the set of their types."""
    return all(issubclass(t, numbers.Real) and (allow_bool or not issubclass(t, bool)) for t in set(map(type, values)))


def _fast_detection_arrays(detections: Sequence) -> tuple[list, list, np.ndarray, np.ndarray] | None:
    """:func:`_detection_arrays` over whole columns (types by their set, values with numpy); ``None`` when
    a detection breaks a rule of :func:`_check_each_detection` or cannot be read this way."""
    n = len(detections)
    if not all(issubclass(t, Mapping) for t in set(map(type, detections))):
        return None
    try:
        image_ids, category_ids, boxes, scores = ([det[key] for det in detections] for key in _REQUIRED_KEYS)
    except Exception:  # a missing key (or an odd mapping): the per-detection check names it
        return None
    if any(issubclass(t, (str, bytes)) or not issubclass(t, (Sequence, np.ndarray)) for t in set(map(type, boxes))):
        return None
    if (n and not (np.fromiter(map(len, boxes), np.intp, n) == 4).all()) or not (
            _only_real(itertools.chain.from_iterable(boxes), allow_bool=True) and _only_real(scores, allow_bool=False)):
        return None
    try:
        box_array = np.fromiter(itertools.chain.from_iterable(boxes), np.float64, 4 * n).reshape(n, 4)
        score_array = np.fromiter(scores, np.float64, n)
    except (TypeError, ValueError, OverflowError):
        return None
    if not (np.isfinite(box_array).all() and np.isfinite(score_array).all() and (box_array[:, 2:] >= 0).all()):
        return None
    return image_ids, category_ids, box_array, score_array


def _detection_arrays(detections: Any) -> tuple[list, list, np.ndarray, np.ndarray]:
    """Validate the detections once; return image ids and category ids (as given), ``[N, 4]`` float64 boxes
    and ``[N]`` float64 scores. ``ValueError`` names the first bad entry and field."""
    if not isinstance(detections, Sequence) or isinstance(detections, (str, bytes)):
        raise ValueError(
            f"detections must be a list of dicts with keys {_REQUIRED_KEYS}, got {type(detections).__name__}"
        )
    arrays = _fast_detection_arrays(detections)
    if arrays is None:
        _check_each_detection(detections)  # raises, naming the first bad detection
        image_ids, category_ids, boxes, scores = ([det[key] for det in detections] for key in _REQUIRED_KEYS)
        arrays = (image_ids, category_ids, np.array([[float(v) for v in b] for b in boxes]).reshape(-1, 4),
                  np.array([float(v) for v in scores], dtype=np.float64))  # valid, but not readable in bulk
    return arrays


def _cap_indices(groups: np.ndarray, scores: np.ndarray, max_dets: int) -> np.ndarray:
    """Indices of the detections that rule 1 keeps, in ``LVISResults.limit_dets_per_image``'s order, from
    an integer code of each detection's image (``groups``) and its score: images in order of their first
    detection; an image over budget stably sorted by decreasing score (``np.lexsort`` is stable, as
    Python's ``sorted(..., reverse=True)`` is) and cut."""
    n = len(groups)
    if n == 0:
        return np.zeros(0, dtype=np.intp)
    _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    group_first = first[inverse]  # position of the image's first detection: the image order
    over = np.bincount(inverse)[inverse] > max_dets
    order = np.lexsort((np.where(over, -scores, 0.0), group_first))
    sorted_first = group_first[order]
    starts = np.flatnonzero(np.r_[True, sorted_first[1:] != sorted_first[:-1]])
    rank = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    return order[rank < max_dets]


def cap_detections_per_image(detections: list[dict], max_dets: int = 300) -> list[dict]:
    """Keep the ``max_dets`` highest-scoring detections of every image, across all categories.

    This is the LVIS per-image budget (Gupta et al. 2019, evaluation details: "at most
    300 detections per image"; docs/ARCHITECTURE.md, "Evaluation rules"), with the result of the official
    ``LVISResults.limit_dets_per_image``: detections are grouped by image in order of
    first appearance; an image with at most ``max_dets`` detections keeps them in input
    order; otherwise they are stably sorted by decreasing score (ties keep input order,
    so the result is deterministic) and cut to ``max_dets``. One ``np.lexsort`` does it
    for all images; scores are compared as float64, which orders them as Python does when
    they are numbers of one kind (Python floats or ints, numpy floats of one precision).

    Args:
        detections: LVIS result dicts (``image_id``, ``category_id``, ``bbox``, ``score``).
        max_dets: per-image budget, a positive integer.

    Returns:
        A new list holding the kept dicts (the dict objects themselves are not copied).

    Raises:
        ValueError: malformed detections or a non-positive ``max_dets``.
    """
    _check_max_dets(max_dets)
    image_ids, _, _, scores = _detection_arrays(detections)
    codes: dict = {}
    groups = np.fromiter((codes.setdefault(i, len(codes)) for i in image_ids), np.int64, len(image_ids))
    return [detections[i] for i in _cap_indices(groups, scores, max_dets).tolist()]


def load_lvis_gt(gt: str | Path | Mapping) -> dict:
    """Return LVIS ground truth as a dict, reading JSON when given a path.

    Loading the LVIS val JSON dominates repeated evaluations, so callers that evaluate
    many times should call this once and pass the dict to :func:`evaluate_lvis`.
    """
    if isinstance(gt, (str, Path)):
        with open(gt, encoding="utf-8") as handle:
            data = json.load(handle)
    elif isinstance(gt, Mapping):
        data = gt
    else:
        raise TypeError(f"gt must be a path or a dict, got {type(gt).__name__}")
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise ValueError(f"LVIS ground truth is missing the {key!r} list")
    return dict(data)


def _nan_if_undefined(values: np.ndarray) -> float:
    """Mean of the defined (``> -1``) entries, ``nan`` when there are none."""
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else float("nan")


def evaluate_lvis(
    gt: str | Path | Mapping,
    detections: list[dict],
    max_dets: int = 300,
    verbose: bool = False,
) -> dict:
    """LVIS bbox AP with the federated rules (Gupta et al. 2019; docs/ARCHITECTURE.md, "Evaluation rules").

    Args:
        gt: LVIS annotation JSON path, or the already-loaded dict (cheap to repeat; it
            is not modified).
        detections: LVIS result dicts with ``image_id``, ``category_id``,
            ``bbox`` ``[x, y, w, h]`` and ``score`` (not modified).
        max_dets: per-image detection budget across all categories (LVIS: 300).
        verbose: let ``faster-coco-eval`` print its progress.

    Returns:
        ``{"AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf": float,
        "per_class_AP": {category_id: float}}``. Values lie in ``[0, 1]``; ``nan``
        where no ground truth defines the metric (the official evaluator's ``-1``).
        ``per_class_AP`` averages the precision array over IoU 0.50:0.95 and the 101
        recall points (area "all") for each category, ``nan`` for categories without
        ground truth in the evaluated images. With no detections every defined metric
        is 0 (the official ``LVISResults`` cannot take an empty list; 0 is what it gives
        when all detections are filtered away).

    Raises:
        ValueError: malformed detections (naming the entry and key; a negative box width or
            height too), a detection with an unknown ``image_id`` or ``category_id`` (naming it),
            ground truth without categories, with an id twice or an annotation without a valid
            ``area``, a category without a valid ``frequency`` field, or a non-positive ``max_dets``.
    """
    # The cyclic garbage collector is paused (its state restored after): an evaluation allocates millions of
    # containers, and its passes over them (and the caller's detections) took a quarter of the time in
    # benchmarks/bench_lvis_eval.py. Nothing here needs a reference cycle collected before returning.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        gt_data = load_lvis_gt(gt)
        inputs = _check_inputs(gt_data, detections, max_dets)
        gt_eval = _ground_truth_to_evaluate(gt_data)
        evaluator = _run_evaluator(gt_eval, _detections_to_evaluate(gt_eval, inputs, max_dets),
                                   inputs.category_ids, max_dets, verbose)
        frequency = {cat["id"]: cat["frequency"] for cat in gt_data["categories"]}
        return _summarise(evaluator, inputs.category_ids, frequency)
    finally:
        if gc_was_enabled:
            gc.enable()


#: Checked inputs: the ground truth's image ids (its order) and sorted category ids; the detections' images
#: and categories as indices into those two lists, ``[N, 4]`` float64 boxes and ``[N]`` float64 scores.
_Inputs = namedtuple("_Inputs", "image_ids category_ids det_images det_categories boxes scores")


def _indices(values: list, ids: list) -> np.ndarray:
    """The position of every value in ``ids``, ``-1`` for a value not there."""
    index = {value: k for k, value in enumerate(ids)}
    return np.fromiter(map(index.get, values, itertools.repeat(-1, len(values))), np.int64, len(values))


def _check_inputs(gt_data: Mapping, detections: list[dict], max_dets: int) -> _Inputs:
    """Validate ``max_dets``, the detections and the categories' frequency groups (rule 4) against the
    ground truth."""
    _check_max_dets(max_dets)
    det_image_ids, det_category_ids, boxes, scores = _detection_arrays(detections)
    _check_ground_truth(gt_data)
    for cat in gt_data["categories"]:
        if cat.get("frequency") not in _FREQUENCIES:
            raise ValueError(f"category {cat['id']} has frequency {cat.get('frequency')!r}, expected one of r/c/f")
    image_ids = [img["id"] for img in gt_data["images"]]
    category_ids = sorted(cat["id"] for cat in gt_data["categories"])
    det_images, det_categories = _indices(det_image_ids, image_ids), _indices(det_category_ids, category_ids)
    for index in np.flatnonzero((det_images < 0) | (det_categories < 0))[:1].tolist():
        if det_images[index] < 0:
            raise ValueError(f"detections[{index}] has unknown image_id {det_image_ids[index]!r}")
        raise ValueError(f"detections[{index}] has unknown category_id {det_category_ids[index]!r}")
    return _Inputs(image_ids, category_ids, det_images, det_categories, boxes, scores)


def _check_ground_truth(gt_data: Mapping) -> None:
    """Refuse ground truth that would give wrong numbers without an error: no category, an id twice (an
    image, annotation or category), an annotation without a usable ``area`` (the evaluator selects and
    groups boxes by it)."""
    if not gt_data["categories"]:
        raise ValueError("LVIS ground truth has an empty 'categories' list: there is no category to evaluate")
    for key in ("images", "annotations", "categories"):
        seen: set = set()
        for index, record in enumerate(gt_data[key]):
            if not isinstance(record, Mapping) or "id" not in record:
                raise ValueError(f"LVIS ground truth {key}[{index}] has no 'id': {record!r:.200}")
            if record["id"] in seen:
                raise ValueError(f"LVIS ground truth {key}[{index}] repeats the {key[:-1]} id {record['id']!r}; "
                                 "each id must appear once")
            seen.add(record["id"])
    for index, ann in enumerate(gt_data["annotations"]):
        area = ann.get("area")
        if isinstance(area, bool) or not isinstance(area, numbers.Real) or math.isnan(area) or area < 0:
            raise ValueError(f"LVIS ground truth annotations[{index}] (id {ann['id']!r}) has area {area!r}; expected "
                             "a number >= 0 (the box's area in pixels)")


def _detections_to_evaluate(gt_eval: Mapping, inputs: _Inputs, max_dets: int) -> list[dict]:
    """Rule 1 (before the federated filter), then drop what rule 2 drops (a category neither on one of the
    image's evaluated boxes nor in its ``neg_category_ids``) and what the official loader's
    ``0 < area < inf`` does; as fresh dicts (faster-coco-eval writes id/area/segmentation/lvis_mark into
    them), in the official ``LVISResults`` order."""
    num_cats = len(inputs.category_ids)
    images = [ann["image_id"] for ann in gt_eval["annotations"]]
    categories = [ann["category_id"] for ann in gt_eval["annotations"]]
    for img in gt_eval["images"]:
        negatives = img.get("neg_category_ids") or []
        images.extend([img["id"]] * len(negatives))
        categories.extend(negatives)
    image_codes, category_codes = _indices(images, inputs.image_ids), _indices(categories, inputs.category_ids)
    known = (image_codes >= 0) & (category_codes >= 0)
    verified = np.unique(image_codes[known] * num_cats + category_codes[known])
    kept = _cap_indices(inputs.det_images, inputs.scores, max_dets)
    area = inputs.boxes[kept, 2] * inputs.boxes[kept, 3]
    keys = inputs.det_images[kept] * num_cats + inputs.det_categories[kept]
    kept = kept[np.isin(keys, verified) & (area > 0) & (area < np.inf)]
    return [
        {"image_id": inputs.image_ids[i], "category_id": inputs.category_ids[c], "bbox": bbox, "score": score}
        for i, c, bbox, score in zip(inputs.det_images[kept].tolist(), inputs.det_categories[kept].tolist(),
                                     inputs.boxes[kept].tolist(), inputs.scores[kept].tolist())
    ]


def _ground_truth_to_evaluate(gt_data: Mapping) -> dict:
    """The ground truth with shallow copies of its annotations (the evaluator writes an "ignore" flag into
    them), under the official loader's ``0 < area < inf`` selection."""
    annotations = [dict(ann) for ann in gt_data["annotations"] if 0 < ann["area"] < math.inf]
    return {"images": gt_data["images"], "categories": gt_data["categories"], "annotations": annotations}


def _run_evaluator(gt_eval: dict, dt_list: list[dict], category_ids: list[int], max_dets: int, verbose: bool) -> Any:
    """Rules 2-4: ``faster_coco_eval.COCOeval_faster(lvis_style=True)`` evaluated and accumulated over
    the LVIS area ranges with one detection budget, ``max_dets``."""
    from faster_coco_eval import COCO, COCOeval_faster

    printer = print if verbose else _silent
    coco_gt = COCO(gt_eval, print_function=printer)
    coco_dt = coco_gt.loadRes(dt_list)
    coco_dt.print_function = printer
    evaluator = COCOeval_faster(coco_gt, coco_dt, iouType="bbox", lvis_style=True, print_function=printer,
                                ranges={k: list(v) for k, v in LVIS_AREA_RANGES.items()})
    evaluator.params.catIds = category_ids
    evaluator.params.maxDets = [int(max_dets)]
    evaluator.evaluate()
    evaluator.accumulate()
    return evaluator


def _summarise(evaluator: Any, category_ids: list[int], frequency: Mapping[int, str]) -> dict:
    """``METRIC_NAMES`` and ``per_class_AP`` from the accumulated precision array
    ``[T iou thresholds, R recall points, K categories, A area ranges, M maxDets]``."""
    precision = np.asarray(evaluator.eval["precision"], dtype=np.float64)
    area_labels = list(evaluator.params.areaRngLbl)
    a_all = area_labels.index("all")
    iou_thrs = np.asarray(evaluator.params.iouThrs)
    t50 = int(np.argmin(np.abs(iou_thrs - 0.50)))
    t75 = int(np.argmin(np.abs(iou_thrs - 0.75)))
    group = {f: [k for k, cid in enumerate(category_ids) if frequency[cid] == f] for f in _FREQUENCIES}

    p_all = precision[:, :, :, a_all, 0]
    results: dict[str, Any] = {
        "AP": _nan_if_undefined(p_all),
        "AP50": _nan_if_undefined(p_all[t50]),
        "AP75": _nan_if_undefined(p_all[t75]),
        "APs": _nan_if_undefined(precision[:, :, :, area_labels.index("small"), 0]),
        "APm": _nan_if_undefined(precision[:, :, :, area_labels.index("medium"), 0]),
        "APl": _nan_if_undefined(precision[:, :, :, area_labels.index("large"), 0]),
        "APr": _nan_if_undefined(p_all[:, :, group["r"]]),
        "APc": _nan_if_undefined(p_all[:, :, group["c"]]),
        "APf": _nan_if_undefined(p_all[:, :, group["f"]]),
    }
    results["per_class_AP"] = {int(cid): _nan_if_undefined(p_all[:, :, k]) for k, cid in enumerate(category_ids)}
    return results
