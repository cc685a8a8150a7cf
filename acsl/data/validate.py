"""The one validation of an LVIS-format annotation file's records, shared by ``acsl data check``
(:func:`acsl.data.check.check_lvis`, which reports every problem) and the loaders
(:func:`acsl.data.lvis_dataset.validate_lvis_json`, which refuses the file at the first one).

:func:`validate_records` checks everything the loaders (:class:`acsl.data.lvis_dataset.LVISDetection`),
the samplers (``frequency``, ``image_count``) and the federated LVIS evaluator rely on
(docs/ARCHITECTURE.md, "Evaluation rules": ``area``, ``neg_category_ids``,
``not_exhaustive_category_ids``, r/c/f groups) and hands each problem to a collector: a
:class:`~acsl.data.problems.ProblemCollector` keeps them all, :class:`FirstProblem` raises an
:class:`AnnotationError` at the first.

LVIS rules checked (Gupta et al., *LVIS*, CVPR 2019, and the released v0.5 / v1 files):

* top level: ``images``, ``annotations`` and ``categories`` lists;
* images: integer ``id`` (unique), positive integer ``width`` / ``height``; the image path comes
  from ``file_name`` in v0.5 and from the basename of ``coco_url`` in v1 (v1 images have no
  ``file_name``);
* categories: at least one; integer ``id`` (unique), string ``name``, ``frequency`` in r/c/f, and,
  where ``image_count`` is present and ``frequency_rule`` asks, the frequency LVIS's rule gives for
  it: rare 1–10 training images, common 11–100, frequent more than 100; 1230 categories in v0.5,
  1203 in v1 (checked when the version is given);
* annotations: integer ``id`` (unique), known ``image_id`` and ``category_id``, ``bbox`` of four
  finite numbers ``[x, y, w, h]`` with ``w > 0`` and ``h > 0`` lying in its image up to ``BOX_OVERHANG_PX``,
  ``area`` a finite number >= 0;
* federated fields: ``neg_category_ids`` / ``not_exhaustive_category_ids`` are lists of known
  category ids, and a category annotated on an image is not also listed as negative for it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

from acsl.data.stats import frequency_from_image_count

__all__ = ["AnnotationError", "Collector", "EXPECTED_NUM_CATEGORIES", "FirstProblem", "validate_records"]

#: How far a box may extend beyond its image and still be accepted (then clipped to it, as torchvision's and
#: detectron2's loaders do): COCO's and LVIS's boxes are the extents of polygons drawn in the image, stored to
#: 0.01 px, so a real box overhangs by a rounding at most (lvis-api's data/lvis_val_100.json: none of its 977
#: boxes reaches past its image's border); 1 px is a hundred times that rounding. Farther is a wrong box.
BOX_OVERHANG_PX = 1.0

#: Category counts of the released LVIS versions (v0.5: 1230, v1: 1203).
EXPECTED_NUM_CATEGORIES: dict[str, int] = {"v0.5": 1230, "v1": 1203}

_FED_FIELDS = ("neg_category_ids", "not_exhaustive_category_ids")


class AnnotationError(ValueError):
    """An LVIS-format annotation file is unreadable or lacks a field the loaders need.

    The message names the file, the field (e.g. ``categories[3].frequency``), what was expected and the
    value found.
    """


class Collector(Protocol):
    """Where :func:`validate_records` reports a problem: ``field`` (a JSON path) and ``message``."""

    def add(self, field: str, message: str, file: str | None = None) -> None: ...


class FirstProblem:
    """A collector that refuses the file at the first problem: an :class:`AnnotationError` naming the
    file, the field and the message (which holds the value found)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)

    def add(self, field: str, message: str, file: str | None = None) -> None:
        raise AnnotationError(f"{file or self.path}: field {field!r}: {message}")


def validate_records(out: Collector, data: Any, *, version: str | None = None,
                     frequency_rule: bool = True) -> tuple[list[Any], str]:
    """Check the parsed JSON ``data`` of an LVIS-format file, reporting every problem to ``out``.

    ``version`` ("v0.5" / "v1", already normalised; None: auto-detected) demands that version's image
    path field and category count; ``frequency_rule`` checks ``frequency`` against ``image_count``.
    Returns (the ``images`` list, or [] without one; the version whose path convention applies).
    """
    if not isinstance(data, dict):
        out.add("<top level>", f"expected a JSON object, got {type(data).__name__}")
        return [], version or "v1"
    lists = _top_level_lists(out, data)
    images = lists.get("images", [])
    eff_version = version or _detect_version(images)
    has_cats, has_images = "categories" in lists, "images" in lists
    cat_ids = _check_categories(out, lists.get("categories", []), has_cats, version, frequency_rule)
    img_index = _check_images(out, images, cat_ids, has_cats, version, eff_version)
    sizes = {iid: (images[k].get("width"), images[k].get("height")) for iid, k in img_index.items()}
    positives = _check_annotations(out, lists.get("annotations", []), img_index, cat_ids, has_images, has_cats, sizes)
    _check_negatives(out, images, img_index, positives)
    return images, eff_version


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _short(v: Any, n: int = 80) -> str:
    s = repr(v)
    return s if len(s) <= n else s[: n - 1] + "…"


def _detect_version(images: list[Any]) -> str:
    """'v0.5' if any image carries a ``file_name`` (v0.5 files have it), else 'v1'."""
    for im in images:
        if isinstance(im, dict) and isinstance(im.get("file_name"), str):
            return "v0.5"
    return "v1"


def _check_unique_id(out: Collector, field: str, value: Any, seen: set[int], kind: str) -> None:
    """Report ``value`` unless it is an integer id not seen before; remember it when it is."""
    if not _is_int(value):
        out.add(f"{field}.id", f"expected an integer id, got {_short(value)}")
    elif value in seen:
        out.add(f"{field}.id", f"duplicate {kind} id {value}")
    else:
        seen.add(value)


def _top_level_lists(out: Collector, data: dict[str, Any]) -> dict[str, list[Any]]:
    """The ``images`` / ``annotations`` / ``categories`` lists present; a problem for each one not."""
    lists: dict[str, list[Any]] = {}
    for key in ("images", "annotations", "categories"):
        if key not in data:
            out.add(key, "missing top-level key (expected a list)")
        elif not isinstance(data[key], list):
            out.add(key, f"expected a list, got {type(data[key]).__name__}")
        else:
            lists[key] = data[key]
    return lists


def _check_categories(
    out: Collector, cats: list[Any], has_cats: bool, given_version: str | None, frequency_rule: bool
) -> set[int]:
    """Check the category list and each record; the set of valid unique category ids."""
    cat_ids: set[int] = set()
    if has_cats and not cats:
        out.add("categories", "empty list (expected a non-empty list of categories)")
    if given_version is not None and has_cats:
        want = EXPECTED_NUM_CATEGORIES[given_version]
        if len(cats) != want:
            out.add("categories", f"LVIS {given_version} has {want} categories, found {len(cats)}")
    for k, c in enumerate(cats):
        f = f"categories[{k}]"
        if not isinstance(c, dict):
            out.add(f, f"expected an object, got {_short(c)}")
            continue
        _check_unique_id(out, f, c.get("id"), cat_ids, "category")
        if not isinstance(c.get("name"), str):
            out.add(f"{f}.name", f"expected a string, got {_short(c.get('name'))}")
        _check_frequency(out, f, c, frequency_rule)
    return cat_ids


def _check_frequency(out: Collector, f: str, c: dict[str, Any], frequency_rule: bool) -> None:
    """``frequency`` in r/c/f, a valid ``image_count`` if present, and LVIS's rule between them."""
    freq = c.get("frequency")
    freq_ok = freq in ("r", "c", "f")
    if "frequency" not in c:
        out.add(f"{f}.frequency", "missing (expected one of 'r', 'c', 'f')")
    elif not freq_ok:
        out.add(f"{f}.frequency", f"expected one of 'r', 'c', 'f', got {_short(freq)}")
    if "image_count" in c:
        n = c["image_count"]
        if not _is_int(n) or n < 0:
            out.add(f"{f}.image_count", f"expected a non-negative integer, got {_short(n)}")
        elif frequency_rule and freq_ok and frequency_from_image_count(n) != freq:
            out.add(
                f"{f}.frequency",
                f"{freq!r} is inconsistent with image_count {n}: LVIS's rule "
                f"(r <= 10 images, c 11-100, f > 100) gives "
                f"{frequency_from_image_count(n)!r}",
            )


def _check_images(
    out: Collector, images: list[Any], cat_ids: set[int], has_cats: bool, given_version: str | None,
    eff_version: str,
) -> dict[int, int]:
    """Check each image record; the index image id -> position in ``images`` of the valid ids."""
    img_index: dict[int, int] = {}
    path_field = "file_name" if eff_version == "v0.5" else "coco_url"
    for k, im in enumerate(images):
        f = f"images[{k}]"
        if not isinstance(im, dict):
            out.add(f, f"expected an object, got {_short(im)}")
            continue
        iid = im.get("id")
        if not _is_int(iid):
            out.add(f"{f}.id", f"expected an integer id, got {_short(iid)}")
        elif iid in img_index:
            out.add(f"{f}.id", f"duplicate image id {iid}")
        else:
            img_index[iid] = k
        for dim in ("width", "height"):
            v = im.get(dim)
            if dim not in im:
                out.add(f"{f}.{dim}", "missing (expected a positive integer)")
            elif not _is_int(v) or v <= 0:
                out.add(f"{f}.{dim}", f"expected a positive integer, got {_short(v)}")
        _check_image_path_field(out, f, im, given_version, path_field)
        _check_federated_lists(out, f, im, cat_ids, has_cats)
    return img_index


def _check_image_path_field(
    out: Collector, f: str, im: dict[str, Any], given_version: str | None, path_field: str
) -> None:
    """The field the version finds images by (v0.5 ``file_name``, v1 ``coco_url``) is present."""
    has_fn = isinstance(im.get("file_name"), str) and bool(im.get("file_name"))
    has_url = isinstance(im.get("coco_url"), str) and bool(im.get("coco_url"))
    if given_version == "v0.5" and not has_fn:
        out.add(f"{f}.file_name", "missing (LVIS v0.5 images are found by file_name)")
    elif given_version == "v1" and not has_url:
        out.add(f"{f}.coco_url", "missing (LVIS v1 images are found by the basename of coco_url)")
    elif given_version is None and not (has_fn or has_url):
        out.add(f"{f}.{path_field}", "missing: neither file_name (v0.5) nor coco_url (v1) present")


def _check_federated_lists(out: Collector, f: str, im: dict[str, Any], cat_ids: set[int], has_cats: bool) -> None:
    """``neg_category_ids`` / ``not_exhaustive_category_ids``, where present, list known category ids."""
    for lst in _FED_FIELDS:
        if lst not in im:
            continue
        ids = im[lst]
        if not isinstance(ids, list):
            out.add(f"{f}.{lst}", f"expected a list of category ids, got {_short(ids)}")
            continue
        unknown = [x for x in ids if not (_is_int(x) and x in cat_ids)]
        if unknown and has_cats:
            out.add(f"{f}.{lst}", f"unknown category ids {_short(unknown)} (image id {_short(im.get('id'))})")


def _check_annotations(
    out: Collector, anns: list[Any], img_index: dict[int, int], cat_ids: set[int], has_images: bool,
    has_cats: bool, sizes: dict[int, tuple[Any, Any]] | None = None,
) -> dict[int, set[int]]:
    """Check each annotation record; the known category ids annotated per image id."""
    ann_ids: set[int] = set()
    positives: dict[int, set[int]] = {}
    for k, a in enumerate(anns):
        f = f"annotations[{k}]"
        if not isinstance(a, dict):
            out.add(f, f"expected an object, got {_short(a)}")
            continue
        _check_unique_id(out, f, a.get("id"), ann_ids, "annotation")
        iid, cid = a.get("image_id"), a.get("category_id")
        if not _is_int(iid):
            out.add(f"{f}.image_id", f"expected an integer image id, got {_short(iid)}")
        elif iid not in img_index and has_images:
            out.add(f"{f}.image_id", f"unknown image id {iid} (not in 'images')")
        if not _is_int(cid):
            out.add(f"{f}.category_id", f"expected an integer category id, got {_short(cid)}")
        elif cid not in cat_ids and has_cats:
            out.add(f"{f}.category_id", f"unknown category id {cid} (not in 'categories')")
        elif _is_int(iid):
            positives.setdefault(iid, set()).add(cid)
        if _check_bbox(out, f, a) and sizes and _is_int(iid) and iid in sizes:
            _check_inside(out, f, a, iid, *sizes[iid])
    return positives


def _check_bbox(out: Collector, f: str, a: dict[str, Any]) -> bool:
    """``bbox`` is ``[x, y, w, h]``: four finite numbers with ``w > 0`` and ``h > 0``; whether it is."""
    bbox = a.get("bbox")
    if "bbox" not in a:
        out.add(f"{f}.bbox", "missing (expected [x, y, w, h])")
    elif not isinstance(bbox, list) or len(bbox) != 4 or not all(map(_is_number, bbox)):
        out.add(f"{f}.bbox", f"expected [x, y, w, h]: 4 finite numbers, got {_short(bbox)}")
    elif bbox[2] <= 0 or bbox[3] <= 0:
        out.add(f"{f}.bbox", f"expected w > 0 and h > 0, got {_short(bbox)}")
    else:
        return True
    return False


def _check_inside(out: Collector, f: str, a: dict[str, Any], image_id: int, width: Any, height: Any) -> None:
    """The box lies in its image up to ``BOX_OVERHANG_PX`` (the loader clips what is left over)."""
    if not (_is_number(width) and _is_number(height)):
        return  # the image's own check names a bad size
    x, y, w, h = a["bbox"]
    overhang = max(-x, -y, x + w - width, y + h - height)
    if overhang > BOX_OVERHANG_PX or min(x + w, width) <= max(x, 0) or min(y + h, height) <= max(y, 0):
        out.add(f"{f}.bbox", f"annotation id {_short(a.get('id'))}: box {_short(a['bbox'])} extends {overhang:g} px "
                             f"beyond its image (id {image_id}, {width} × {height}); at most {BOX_OVERHANG_PX:g} px "
                             "is clipped")
    area = a.get("area")
    if "area" not in a:
        out.add(f"{f}.area", "missing (expected a finite number >= 0, the box's area in pixels; the evaluator "
                             "selects boxes by it)")
    elif not _is_number(area) or area < 0:
        out.add(f"{f}.area", f"expected a finite number >= 0, got {_short(area)}")


def _check_negatives(
    out: Collector, images: list[Any], img_index: dict[int, int], positives: dict[int, set[int]]
) -> None:
    """A category annotated on an image cannot also be verified absent from it (federated rules)."""
    for iid, k in img_index.items():
        neg = images[k].get("neg_category_ids")
        if isinstance(neg, list) and iid in positives:
            both = sorted(positives[iid].intersection(x for x in neg if _is_int(x)))
            if both:
                out.add(
                    f"images[{k}].neg_category_ids",
                    f"categories {_short(both)} are annotated on image {iid} yet listed as negative",
                )
