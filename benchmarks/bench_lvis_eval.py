"""Speed of the LVIS evaluator (``acsl.evaluation.evaluate_lvis``) against the official ``lvis`` API on
2000 images × 300 categories × about 160 detections per image (issue 12 target: at least 5× faster, with
the same numbers).

The data come from the generator of the agreement test (``tests/test_lvis_eval.py``, seeded): long-tailed
r/c/f categories, ``neg_category_ids`` and ``not_exhaustive_category_ids`` on every image, boxes of every
size, and detections of every kind (jittered ground truth, duplicates, false positives on positive,
negative, non-exhaustive and unverified categories, a few images over the 300 budget), topped up with
background boxes to ``--dets-per-image``. Both evaluators read the same ground-truth JSON file and get the
same detections, in one process; printed: seconds for each, the ratio official / ours and the largest
absolute difference over AP, AP50, AP75, APs, APm, APl, APr, APc, APf. Exits with status 1 when that
difference exceeds 1e-4.

    python benchmarks/bench_lvis_eval.py [--images 2000] [--categories 300] [--dets-per-image 160] [--seed 0]
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import logging
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the data generator lives with the agreement test
from tests.test_lvis_eval import make_detections, make_lvis_gt  # noqa: E402

from acsl.evaluation import METRIC_NAMES, evaluate_lvis  # noqa: E402

TOLERANCE = 1e-4


def official_lvis(gt_path: Path, detections: list[dict], max_dets: int) -> dict:
    """The official ``lvis`` evaluator (``LVIS``, ``LVISResults``, ``LVISEval``); ``-1`` -> ``nan``."""
    # lvis 0.5.3's LVISEval.accumulate calls ``astype(np.float)``, an alias numpy 1.24 removed; the alias
    # is restored for this benchmark process only (nothing in the package needs it).
    if not hasattr(np, "float"):
        np.float = float
    import lvis

    logging.getLogger("lvis").setLevel(logging.ERROR)  # "Assuming user provided the results in correct format."
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # lvis calls the deprecated Logger.warn
        lvis_gt = lvis.LVIS(str(gt_path))
        results = lvis.LVISResults(lvis_gt, detections, max_dets=max_dets)
        evaluator = lvis.LVISEval(lvis_gt, results, iou_type="bbox")
        evaluator.run()
        metrics = evaluator.get_results()
    return {k: (float("nan") if metrics[k] == -1 else float(metrics[k])) for k in METRIC_NAMES}


def largest_difference(a: dict, b: dict) -> float:
    """max |a - b| over ``METRIC_NAMES``; two ``nan`` agree, one ``nan`` is an infinite difference."""
    diffs = [0.0 if math.isnan(a[k]) and math.isnan(b[k]) else abs(a[k] - b[k]) for k in METRIC_NAMES]
    return max(math.inf if math.isnan(d) else d for d in diffs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--categories", type=int, default=300)
    parser.add_argument("--dets-per-image", type=int, default=160)
    parser.add_argument("--max-dets", type=int, default=300, help="per-image budget (LVIS: 300)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    started = time.perf_counter()
    gt = make_lvis_gt(seed=args.seed, num_images=args.images, num_categories=args.categories)
    detections = make_detections(gt, seed=args.seed + 1, per_image=args.dets_per_image)
    print(f"{args.images} images, {args.categories} categories, {len(gt['annotations'])} boxes, "
          f"{len(detections)} detections ({len(detections) / args.images:.0f} per image; "
          f"generated in {time.perf_counter() - started:.1f} s)")

    with tempfile.TemporaryDirectory() as tmp:
        gt_path = Path(tmp) / "lvis_gt.json"
        gt_path.write_text(json.dumps(gt))
        timings, metrics = {}, {}
        official_dets = copy.deepcopy(detections)  # LVISResults writes into its detections; not timed
        gc.collect()
        started = time.perf_counter()
        metrics["official lvis 0.5.3"] = official_lvis(gt_path, official_dets, args.max_dets)
        timings["official lvis 0.5.3"] = time.perf_counter() - started
        del official_dets
        gc.collect()  # each evaluator starts with the same live objects: the data and nothing else
        started = time.perf_counter()
        metrics["acsl evaluate_lvis"] = evaluate_lvis(gt_path, detections, max_dets=args.max_dets)
        timings["acsl evaluate_lvis"] = time.perf_counter() - started

    print(f"{'evaluator':22s} {'seconds':>8s} {'speed-up':>9s}  " + " ".join(f"{k:>6s}" for k in METRIC_NAMES))
    for name, seconds in timings.items():
        values = " ".join(f"{100 * metrics[name][k]:6.2f}" for k in METRIC_NAMES)
        print(f"{name:22s} {seconds:8.2f} {timings['official lvis 0.5.3'] / seconds:8.2f}x  {values}")
    diff = largest_difference(metrics["official lvis 0.5.3"], metrics["acsl evaluate_lvis"])
    ratio = timings["official lvis 0.5.3"] / timings["acsl evaluate_lvis"]
    print(f"official / ours = {ratio:.2f}x; largest |difference| over {', '.join(METRIC_NAMES)}: {diff:.2e} "
          f"(tolerance {TOLERANCE:g})")
    if not diff <= TOLERANCE:
        print("FAIL: the metrics differ from the official evaluator's", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
