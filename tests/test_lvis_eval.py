"""Tests for acsl.evaluation.lvis_eval (docs/ARCHITECTURE.md, "Evaluation rules").

The key test compares :func:`evaluate_lvis` (faster-coco-eval + the per-image cap)
with the official ``lvis==0.5.3`` ``LVISEval`` on generated LVIS-format data. The generators
(:func:`make_lvis_gt`, :func:`make_detections`) also feed ``benchmarks/bench_lvis_eval.py``.

Test-local compatibility shims for the official evaluator (nothing outside this file
is changed, and both shims are removed when the reference run is done):

* ``numpy.float`` was removed in numpy 1.24 but ``LVISEval.accumulate`` calls
  ``astype(np.float)``; ``numpy.float = float`` is set with pytest's ``MonkeyPatch``
  only while the official evaluator runs.
* ``lvis`` imports ``pycocotools.mask`` (for ``iou`` in bbox mode). When pycocotools is
  not installed (as in this venv), a minimal module with a numpy box IoU — the same
  formula as ``pycocotools.mask.iou`` for non-crowd boxes: intersection / union — is put
  in ``sys.modules`` instead. It is deliberately independent of faster-coco-eval, so the
  reference does not share code with the implementation under test.
"""

from __future__ import annotations

import copy
import importlib
import json
import math
import sys
import types

import numpy as np
import pytest

from acsl.evaluation import METRIC_NAMES, cap_detections_per_image, evaluate_lvis, load_lvis_gt

TOL = 1e-4

# lvis 0.5.3 calls the deprecated ``Logger.warn``; not our concern here.
pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")


# --------------------------------------------------------------------------------------
# Generated LVIS-format data
# --------------------------------------------------------------------------------------
def _box_segmentation(x: float, y: float, w: float, h: float) -> list[list[float]]:
    return [[x, y, x, y + h, x + w, y + h, x + w, y]]


def make_lvis_gt(seed: int = 0, num_images: int = 150, num_categories: int = 300) -> dict:
    """Random LVIS-style GT: long-tailed categories, neg / not-exhaustive lists, all box sizes."""
    rng = np.random.default_rng(seed)
    cat_ids = np.arange(1, num_categories + 1)
    freqs = rng.choice(["r", "c", "f"], size=num_categories, p=[0.35, 0.4, 0.25])
    weight = np.array([{"r": 1.0, "c": 4.0, "f": 16.0}[f] for f in freqs])
    weight /= weight.sum()
    images, annotations = [], []
    ann_id = 1
    for image_id in range(1, num_images + 1):
        width, height = int(rng.integers(400, 800)), int(rng.integers(300, 700))
        n_pos = int(rng.integers(1, 7))
        pos = sorted(int(c) for c in rng.choice(cat_ids, size=n_pos, replace=False, p=weight))
        for cat in pos:
            for _ in range(int(rng.integers(1, 5))):
                side = float(np.exp(rng.uniform(np.log(6), np.log(350))))  # small .. large
                aspect = float(rng.uniform(0.5, 2.0))
                w = min(side * math.sqrt(aspect), width - 1.0)
                h = min(side / math.sqrt(aspect), height - 1.0)
                x = float(rng.uniform(0, width - w))
                y = float(rng.uniform(0, height - h))
                annotations.append({
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": cat,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "segmentation": _box_segmentation(x, y, w, h),
                })
                ann_id += 1
        others = [int(c) for c in cat_ids if int(c) not in pos]
        neg = sorted(int(c) for c in rng.choice(others, size=int(rng.integers(2, 11)), replace=False))
        not_exhaustive = sorted(c for c in pos if rng.random() < 0.25)
        images.append({
            "id": image_id,
            "width": width,
            "height": height,
            "file_name": f"{image_id:012d}.jpg",
            "neg_category_ids": neg,
            "not_exhaustive_category_ids": not_exhaustive,
        })
    image_count = dict.fromkeys((int(c) for c in cat_ids), 0)
    instance_count = dict(image_count)
    for cat, _image in {(a["category_id"], a["image_id"]) for a in annotations}:
        image_count[cat] += 1
    for a in annotations:
        instance_count[a["category_id"]] += 1
    categories = [
        {
            "id": int(c),
            "name": f"category_{int(c)}",
            "synset": f"category_{int(c)}.n.01",
            "frequency": str(f),
            "image_count": image_count[int(c)],
            "instance_count": instance_count[int(c)],
        }
        for c, f in zip(cat_ids, freqs)
    ]
    return {"info": {}, "licenses": [], "images": images, "annotations": annotations, "categories": categories}


def make_detections(gt: dict, seed: int = 1, heavy_images: int = 12, per_image: int = 0) -> list[dict]:
    """Jittered GT boxes, duplicates and false positives on every kind of category; with ``per_image`` > 0,
    every image is then topped up to ``per_image`` detections with random boxes of its positive, negative
    and unverified categories (the size of a real detector's output; ``benchmarks/bench_lvis_eval.py``)."""
    rng = np.random.default_rng(seed)
    cat_ids = [c["id"] for c in gt["categories"]]
    by_image: dict[int, list[dict]] = {}
    for ann in gt["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    dets: list[dict] = []

    def random_box(img: dict) -> list[float]:
        side = float(np.exp(rng.uniform(np.log(5), np.log(300))))
        w, h = min(side, img["width"] - 1.0), min(side * rng.uniform(0.5, 2.0), img["height"] - 1.0)
        return [float(rng.uniform(0, img["width"] - w)), float(rng.uniform(0, img["height"] - h)), w, h]

    def add(image_id: int, cat: int, box: list[float], score: float) -> None:
        dets.append({"image_id": image_id, "category_id": int(cat), "bbox": box, "score": float(score)})

    for idx, img in enumerate(gt["images"]):
        first = len(dets)
        anns = by_image.get(img["id"], [])
        pos = sorted({a["category_id"] for a in anns})
        unverified = [c for c in cat_ids if c not in pos and c not in img["neg_category_ids"]]
        for ann in anns:  # true positives of varying quality, some duplicates
            x, y, w, h = ann["bbox"]
            for _ in range(int(rng.choice([0, 1, 1, 1, 2]))):
                jit = rng.normal(0, 0.08, size=4)
                add(img["id"], ann["category_id"],
                    [x + jit[0] * w, y + jit[1] * h, w * (1 + jit[2]), h * (1 + jit[3])],
                    rng.uniform(0.05, 1.0))
        for cat in pos:  # false positives on positive categories
            for _ in range(int(rng.integers(0, 3))):
                add(img["id"], cat, random_box(img), rng.uniform(0, 0.9))
        for cat in img["neg_category_ids"]:  # false positives on negative categories
            if rng.random() < 0.5:
                add(img["id"], cat, random_box(img), rng.uniform(0, 1.0))
        for cat in img["not_exhaustive_category_ids"]:  # unmatched dets that must be ignored
            for _ in range(int(rng.integers(1, 4))):
                add(img["id"], cat, random_box(img), rng.uniform(0, 1.0))
        for cat in rng.choice(unverified, size=3, replace=False):  # dropped by the federated filter
            add(img["id"], int(cat), random_box(img), rng.uniform(0, 1.0))
        if idx < heavy_images:  # > 300 detections on this image: the per-image cap matters
            pool = pos + list(img["neg_category_ids"]) + unverified[:20]
            for _ in range(int(rng.integers(320, 420))):
                add(img["id"], int(rng.choice(pool)), random_box(img), rng.uniform(0, 1.0))
        if idx % 50 == 0:  # a zero-area box (the official loader drops it)
            add(img["id"], pos[0], [10.0, 10.0, 0.0, 5.0], 0.99)
        missing = per_image - (len(dets) - first)
        if missing > 0:  # background false positives, drawn in bulk
            pool = np.array(pos + list(img["neg_category_ids"]) + unverified)
            side = np.exp(rng.uniform(np.log(5), np.log(300), size=missing))
            w = np.minimum(side, img["width"] - 1.0)
            h = np.minimum(side * rng.uniform(0.5, 2.0, size=missing), img["height"] - 1.0)
            x, y = rng.uniform(0, img["width"] - w), rng.uniform(0, img["height"] - h)
            scores = np.round(rng.uniform(0, 0.6, size=missing), 2)  # 2 decimals: many equal scores
            for box, cat, score in zip(np.c_[x, y, w, h].tolist(), rng.choice(pool, size=missing).tolist(),
                                       scores.tolist()):
                add(img["id"], cat, box, score)
    order = rng.permutation(len(dets))  # detectors do not emit detections grouped by image
    return [dets[i] for i in order]


# --------------------------------------------------------------------------------------
# Official reference (lvis==0.5.3)
# --------------------------------------------------------------------------------------
def _numpy_box_iou(dt, gt, iscrowd):
    """pycocotools.mask.iou for lists of [x, y, w, h] boxes, iscrowd all 0 (LVIS)."""
    if len(dt) == 0 or len(gt) == 0:
        return []
    assert not any(iscrowd)
    d = np.asarray(dt, dtype=np.float64)[:, None, :]
    g = np.asarray(gt, dtype=np.float64)[None, :, :]
    iw = np.clip(np.minimum(d[..., 0] + d[..., 2], g[..., 0] + g[..., 2]) - np.maximum(d[..., 0], g[..., 0]), 0, None)
    ih = np.clip(np.minimum(d[..., 1] + d[..., 3], g[..., 1] + g[..., 3]) - np.maximum(d[..., 1], g[..., 1]), 0, None)
    inter = iw * ih
    union = d[..., 2] * d[..., 3] + g[..., 2] * g[..., 3] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _official_context(mp: pytest.MonkeyPatch):
    """Install the test-local shims and import a fresh ``lvis``; returns the module."""
    mp.setattr(np, "float", float, raising=False)
    try:
        importlib.import_module("pycocotools.mask")
    except ImportError:
        pkg = types.ModuleType("pycocotools")
        mask = types.ModuleType("pycocotools.mask")
        mask.iou = _numpy_box_iou
        pkg.mask = mask
        mp.setitem(sys.modules, "pycocotools", pkg)
        mp.setitem(sys.modules, "pycocotools.mask", mask)
    for name in [m for m in sys.modules if m == "lvis" or m.startswith("lvis.")]:
        mp.delitem(sys.modules, name)
    return importlib.import_module("lvis")


def official_lvis_eval(gt: dict, detections: list[dict], tmp_path) -> dict:
    """Metrics and per-category AP from the official LVISEval (``-1`` -> ``nan``)."""
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    with pytest.MonkeyPatch.context() as mp:
        lvis = _official_context(mp)
        try:
            lvis_gt = lvis.LVIS(str(path))
            results = lvis.LVISResults(lvis_gt, copy.deepcopy(detections), max_dets=300)
            evaluator = lvis.LVISEval(lvis_gt, results, iou_type="bbox")
            evaluator.run()
            metrics = dict(evaluator.get_results())
            precision = evaluator.eval["precision"]  # [T, R, K, A]
            cat_ids = evaluator.params.cat_ids
        finally:
            for name in [m for m in sys.modules if m == "lvis" or m.startswith("lvis.")]:
                sys.modules.pop(name, None)
    out = {k: (float("nan") if metrics[k] == -1 else float(metrics[k])) for k in METRIC_NAMES}
    per_class = {}
    for k, cid in enumerate(cat_ids):
        p = precision[:, :, k, 0]
        per_class[int(cid)] = float(p[p > -1].mean()) if (p > -1).any() else float("nan")
    out["per_class_AP"] = per_class
    return out


def _close(a: float, b: float, tol: float = TOL) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol


# --------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def generated():
    gt = make_lvis_gt()
    dets = make_detections(gt)
    return gt, dets


@pytest.fixture(scope="module")
def official(generated, tmp_path_factory):
    gt, dets = generated
    return official_lvis_eval(gt, dets, tmp_path_factory.mktemp("official"))


# --------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------
def test_generated_data_exercises_every_rule(generated):
    gt, dets = generated
    assert len(gt["categories"]) == 300 and len(gt["images"]) == 150
    assert {c["frequency"] for c in gt["categories"]} == {"r", "c", "f"}
    imgs = {img["id"]: img for img in gt["images"]}
    pos = {}
    for ann in gt["annotations"]:
        pos.setdefault(ann["image_id"], set()).add(ann["category_id"])
    per_image = {}
    kinds = {"neg": 0, "not_exhaustive": 0, "unverified": 0}
    for d in dets:
        per_image[d["image_id"]] = per_image.get(d["image_id"], 0) + 1
        img = imgs[d["image_id"]]
        if d["category_id"] in img["neg_category_ids"]:
            kinds["neg"] += 1
        elif d["category_id"] in img["not_exhaustive_category_ids"]:
            kinds["not_exhaustive"] += 1
        elif d["category_id"] not in pos[d["image_id"]]:
            kinds["unverified"] += 1
    assert sum(n > 300 for n in per_image.values()) >= 10
    assert all(n > 50 for n in kinds.values()), kinds


def test_matches_official_lvis_eval(generated, official):
    gt, dets = generated
    ours = evaluate_lvis(gt, dets)
    for name in METRIC_NAMES:
        assert _close(ours[name], official[name]), (name, ours[name], official[name])
        assert not math.isnan(ours[name]) and 0.0 < ours[name] < 1.0, name  # a non-degenerate check
    assert ours["per_class_AP"].keys() == official["per_class_AP"].keys()
    for cid, ref in official["per_class_AP"].items():
        assert _close(ours["per_class_AP"][cid], ref), (cid, ours["per_class_AP"][cid], ref)
    assert any(math.isnan(v) for v in ours["per_class_AP"].values())  # categories without GT


def test_cap_changes_result_and_is_needed(generated, official):
    """Without the per-image cap (faster-coco-eval alone caps per image AND category),
    the result differs from the official one: the cap is doing real work here."""
    gt, dets = generated
    uncapped = evaluate_lvis(gt, dets, max_dets=10**6)
    assert any(not _close(uncapped[k], official[k]) for k in METRIC_NAMES)


def test_gt_path_equals_dict_and_inputs_untouched(generated, tmp_path):
    gt, dets = generated
    gt_before, dets_before = copy.deepcopy(gt), copy.deepcopy(dets)
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    from_dict = evaluate_lvis(gt, dets[:2000])
    from_path = evaluate_lvis(path, dets[:2000])
    from_str = evaluate_lvis(str(path), dets[:2000])
    for name in METRIC_NAMES:
        assert _close(from_dict[name], from_path[name], 0.0) and _close(from_dict[name], from_str[name], 0.0)
    assert gt == gt_before and dets == dets_before
    assert load_lvis_gt(path)["categories"] == gt["categories"]


def _tiny_gt(neg=(), not_exhaustive=()):
    """Two images; category 1 has one box on image 1; category 2 has no GT anywhere."""
    return {
        "images": [
            {"id": 1, "width": 100, "height": 100, "neg_category_ids": [],
             "not_exhaustive_category_ids": list(not_exhaustive)},
            {"id": 2, "width": 100, "height": 100, "neg_category_ids": list(neg),
             "not_exhaustive_category_ids": []},
        ],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "area": 1600.0,
                         "segmentation": _box_segmentation(10, 10, 40, 40)}],
        "categories": [{"id": 1, "name": "a", "frequency": "f"}, {"id": 2, "name": "b", "frequency": "r"}],
    }


def test_numpy_typed_detections_are_accepted(capsys):
    dets = [{"image_id": np.int64(1), "category_id": np.int32(1), "bbox": np.array([10, 10, 40, 40], np.float32),
             "score": np.float32(0.5)}]
    assert evaluate_lvis(_tiny_gt(), dets)["AP"] == pytest.approx(1.0)
    assert capsys.readouterr().out == ""  # silent unless verbose=True


def test_federated_rules_by_hand():
    tp = {"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.5}
    fp_img2 = {"image_id": 2, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.9}
    fp_img1 = {"image_id": 1, "category_id": 1, "bbox": [60, 60, 30, 30], "score": 0.9}
    # image 2 is unverified for category 1: its false positive is dropped.
    assert evaluate_lvis(_tiny_gt(), [tp, fp_img2])["AP"] == pytest.approx(1.0)
    # image 2 lists category 1 as negative: the false positive counts (precision 1/2).
    assert evaluate_lvis(_tiny_gt(neg=[1]), [tp, fp_img2])["AP"] == pytest.approx(0.5, abs=1e-6)
    # unmatched detection on a non-exhaustive category is ignored, a matched one still counts.
    assert evaluate_lvis(_tiny_gt(), [tp, fp_img1])["AP"] == pytest.approx(0.5, abs=1e-6)
    assert evaluate_lvis(_tiny_gt(not_exhaustive=[1]), [tp, fp_img1])["AP"] == pytest.approx(1.0)
    res = evaluate_lvis(_tiny_gt(), [tp])
    assert res["APf"] == pytest.approx(1.0) and math.isnan(res["APr"]) and math.isnan(res["APc"])
    assert res["APm"] == pytest.approx(1.0) and math.isnan(res["APs"]) and math.isnan(res["APl"])
    assert res["per_class_AP"][1] == pytest.approx(1.0) and math.isnan(res["per_class_AP"][2])


def test_cap_detections_per_image_top_k_across_categories():
    rng = np.random.default_rng(3)
    dets = [{"image_id": 7, "category_id": int(rng.integers(1, 50)), "bbox": [0, 0, 5, 5],
             "score": float(rng.random())} for _ in range(450)]
    dets += [{"image_id": 8, "category_id": 1, "bbox": [0, 0, 5, 5], "score": float(s)} for s in rng.random(20)]
    rng.shuffle(dets)
    kept = cap_detections_per_image(dets, 300)
    img7 = [d for d in kept if d["image_id"] == 7]
    assert len(img7) == 300 and len(kept) == 320
    assert sorted(d["score"] for d in img7) == sorted(d["score"] for d in dets if d["image_id"] == 7)[-300:]
    assert len({d["category_id"] for d in img7}) > 1  # the budget is shared across categories
    assert all(any(k is d for d in dets) for k in kept)
    # deterministic tie-break: equal scores keep input order
    ties = [{"image_id": 1, "category_id": c, "bbox": [0, 0, 1, 1], "score": 0.5} for c in range(10)]
    assert [d["category_id"] for d in cap_detections_per_image(ties, 4)] == [0, 1, 2, 3]
    assert cap_detections_per_image([], 300) == []
    with pytest.raises(ValueError, match="max_dets"):
        cap_detections_per_image(ties, 0)


def _reference_cap(detections: list[dict], max_dets: int) -> list[dict]:
    """The official ``LVISResults.limit_dets_per_image`` written out: group by image (first appearance),
    sort an image over budget by score, descending (Python's sort is stable), keep the top ``max_dets``."""
    per_image: dict = {}
    for det in detections:
        per_image.setdefault(det["image_id"], []).append(det)
    kept = []
    for dets in per_image.values():
        if len(dets) > max_dets:
            dets = sorted(dets, key=lambda d: d["score"], reverse=True)[:max_dets]
        kept.extend(dets)
    return kept


_SCORE_KINDS = {  # one kind of number per list, as a detector writes them
    "python float, 0.0 and -0.0": lambda v, rng: -0.0 if v == 0 and rng.random() < 0.5 else float(v),
    "numpy float32": lambda v, rng: np.float32(v),
    "numpy float64 and python float": lambda v, rng: np.float64(v) if rng.random() < 0.5 else float(v),
    "int": lambda v, rng: int(v * 5),
}


@pytest.mark.parametrize("kind", sorted(_SCORE_KINDS))
@pytest.mark.parametrize("seed", range(3))
def test_vectorised_cap_equals_reference_with_ties(seed, kind):
    """Same kept detections in the same order as the reference, on interleaved images of every size around
    the budget, with many equal scores. (Scores mixing numpy float32 with Python floats are left out: numpy
    2 compares those two in float32, so Python's own sort is then not even consistent.)"""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, 25, size=12)
    dets = []
    for image_id, size in enumerate(sizes.tolist()):
        for _ in range(size):
            score = _SCORE_KINDS[kind](int(rng.integers(0, 6)) / 5, rng)  # 6 distinct values: ties everywhere
            dets.append({"image_id": image_id * 7 + 100, "category_id": int(rng.integers(1, 4)),
                         "bbox": [0.0, 0.0, 1.0, 1.0], "score": score})
    order = rng.permutation(len(dets))
    dets = [dets[i] for i in order]
    for max_dets in (1, 3, 10, int(sizes.max()), int(sizes.max()) + 1):
        kept = cap_detections_per_image(dets, max_dets)
        expected = _reference_cap(dets, max_dets)
        assert len(kept) == len(expected) and all(a is b for a, b in zip(kept, expected)), max_dets


def test_cap_on_the_benchmark_data_equals_reference():
    gt = make_lvis_gt(seed=2, num_images=40, num_categories=60)
    dets = make_detections(gt, seed=3, heavy_images=10, per_image=160)  # top-up scores have 2 decimals: ties
    assert sum(len(d) > 300 for d in [[x for x in dets if x["image_id"] == i["id"]] for i in gt["images"]]) >= 10
    kept = cap_detections_per_image(dets, 300)
    expected = _reference_cap(dets, 300)
    assert len(kept) == len(expected) and all(a is b for a, b in zip(kept, expected))


@pytest.mark.parametrize(
    ("bad", "pattern"),
    [
        ({"score": "0.5"}, r"detections\[3\]\['score'\]"),  # numpy would read the string as a number
        ({"score": True}, r"detections\[3\]\['score'\]"),
        ({"score": np.float32("inf")}, r"detections\[3\]\['score'\]"),
        ({"bbox": ["1", 2, 3, 4]}, r"detections\[3\]\['bbox'\]"),
        ({"bbox": "abcd"}, r"detections\[3\]\['bbox'\]"),
        ({"bbox": [0, 0, float("inf"), 1]}, r"detections\[3\]\['bbox'\]"),
        ({"bbox": np.zeros((4, 1))}, r"detections\[3\]\['bbox'\]"),
        ({"bbox": [0, 0, 1, -1]}, r"detections\[3\]\['bbox'\] has a negative"),
    ],
)
def test_bad_detection_named_among_good_ones(bad, pattern):
    good = {"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.5}
    dets = [dict(good) for _ in range(6)]
    dets[3].update(bad)
    dets[5]["score"] = "also bad, but later"
    with pytest.raises(ValueError, match=pattern):
        evaluate_lvis(_tiny_gt(), dets)
    with pytest.raises(ValueError, match=pattern):
        cap_detections_per_image(dets)


def test_odd_but_valid_detections_and_unknown_ids_in_input_order():
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": (10, 10, 40, 40), "score": 1},  # a tuple, an int score
        {"image_id": 1, "category_id": 1, "bbox": [60, 60, True, 20], "score": np.float16(0.2)},
    ]
    assert evaluate_lvis(_tiny_gt(), dets)["AP"] == pytest.approx(1.0)
    bad = [dict(dets[0]), dict(dets[0], category_id=9), dict(dets[0], image_id=9)]
    with pytest.raises(ValueError, match=r"detections\[1\] has unknown category_id 9"):
        evaluate_lvis(_tiny_gt(), bad)
    import gc

    gc.disable()
    try:  # the evaluator pauses the cyclic collector and puts it back as it was
        evaluate_lvis(_tiny_gt(), dets)
        assert not gc.isenabled()
    finally:
        gc.enable()
    evaluate_lvis(_tiny_gt(), dets)
    assert gc.isenabled()


def test_empty_detections_match_official_all_filtered(tmp_path):
    """The official LVISResults cannot take an empty list; a single detection that the
    federated filter drops gives what an empty list means. Every defined metric is 0."""
    gt = make_lvis_gt(seed=5, num_images=20, num_categories=40)
    ours = evaluate_lvis(gt, [])
    img = gt["images"][0]
    pos = {a["category_id"] for a in gt["annotations"] if a["image_id"] == img["id"]}
    unverified = next(c["id"] for c in gt["categories"]
                      if c["id"] not in pos and c["id"] not in img["neg_category_ids"])
    ref = official_lvis_eval(
        gt, [{"image_id": img["id"], "category_id": unverified, "bbox": [1, 1, 10, 10], "score": 0.5}], tmp_path)
    for name in METRIC_NAMES:
        assert _close(ours[name], ref[name]), name
        assert math.isnan(ours[name]) or ours[name] == 0.0
    assert ours["AP"] == 0.0
    for cid, v in ours["per_class_AP"].items():
        assert _close(v, ref["per_class_AP"][cid])


@pytest.mark.parametrize(
    ("dets", "pattern"),
    [
        ("not a list", "list of dicts"),
        ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.1}, 5], r"detections\[1\]"),
        ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.1},
          {"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}], r"detections\[1\] is missing key 'score'"),
        ([{"category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.1}], r"detections\[0\] is missing key 'image_id'"),
        ([{"image_id": 1, "bbox": [0, 0, 1, 1], "score": 0.1}], r"detections\[0\] is missing key 'category_id'"),
        ([{"image_id": 1, "category_id": 1, "score": 0.1}], r"detections\[0\] is missing key 'bbox'"),
        ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1], "score": 0.1}], r"detections\[0\]\['bbox'\]"),
        ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": float("nan")}],
         r"detections\[0\]\['score'\]"),
        ([{"image_id": 99, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.1}], "unknown image_id 99"),
        ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.1},
          {"image_id": 2, "category_id": 77, "bbox": [0, 0, 1, 1], "score": 0.1}],
         r"detections\[1\] has unknown category_id 77"),
    ],
)
def test_bad_detections_raise(dets, pattern):
    with pytest.raises(ValueError, match=pattern):
        evaluate_lvis(_tiny_gt(), dets)


def test_bad_gt_raises():
    gt = _tiny_gt()
    gt["categories"][0]["frequency"] = "x"
    with pytest.raises(ValueError, match="frequency"):
        evaluate_lvis(gt, [])
    with pytest.raises(ValueError, match="annotations"):
        evaluate_lvis({"images": [], "categories": []}, [])
