"""``acsl data check``: validate an LVIS-format annotation file and its images (DESIGN §2, §6).

:func:`check_lvis` inspects an annotation file for everything the loaders
(:class:`acsl.data.lvis_dataset.LVISDetection`), the samplers (``frequency``, ``image_count``) and
the federated LVIS evaluator (DESIGN §6: ``neg_category_ids``, ``not_exhaustive_category_ids``,
r/c/f groups) rely on, and checks that the images it references are present and decodable.
Unlike :func:`acsl.data.lvis_dataset.validate_lvis_json`, which raises on the first violation, it
collects *every* problem as a :class:`Problem` and never raises on bad data, so the command can
print a full report instead of a traceback (:func:`format_report`).

LVIS rules checked (Gupta et al., *LVIS*, CVPR 2019, and the released v0.5 / v1 files):

* top level: ``images``, ``annotations`` and ``categories`` lists;
* images: integer ``id`` (unique), positive integer ``width`` / ``height``; the image path comes
  from ``file_name`` in v0.5 and from the basename of ``coco_url`` in v1 (v1 images have no
  ``file_name``). Real v0.5 ``file_name``\\ s are COCO-2014 names ("COCO_val2014_000000397133.jpg")
  while the images are distributed as COCO 2017 files ("000000397133.jpg"), so a v0.5 image is also
  found by its trailing 12-digit COCO id;
* categories: integer ``id`` (unique), string ``name``, ``frequency`` in r/c/f, and, where
  ``image_count`` is present, the frequency LVIS's rule gives for it: rare 1–10 training images,
  common 11–100, frequent more than 100 (:func:`acsl.data.stats.frequency_from_image_count`);
  1230 categories in v0.5, 1203 in v1 (checked when the version is given);
* annotations: integer ``id`` (unique), known ``image_id`` and ``category_id``, ``bbox`` of four
  finite numbers ``[x, y, w, h]`` with ``w > 0`` and ``h > 0``;
* federated fields: ``neg_category_ids`` / ``not_exhaustive_category_ids`` are lists of known
  category ids, and a category annotated on an image is not also listed as negative for it.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from acsl.data.stats import frequency_from_image_count

__all__ = [
    "DECODE_SAMPLE",
    "EXPECTED_NUM_CATEGORIES",
    "Problem",
    "check_lvis",
    "format_report",
    "resolve_image_path",
]

#: Number of images (in file order) decoded with PIL when ``check_images=True``.
DECODE_SAMPLE: int = 20

#: Category counts of the released LVIS versions (v0.5: 1230, v1: 1203).
EXPECTED_NUM_CATEGORIES: dict[str, int] = {"v0.5": 1230, "v1": 1203}

_VERSION_ALIASES: dict[str, str] = {
    "v0.5": "v0.5", "0.5": "v0.5", "lvis-v0.5": "v0.5", "lvis_v0.5": "v0.5",
    "v1": "v1", "1": "v1", "v1.0": "v1", "lvis-v1": "v1", "lvis_v1": "v1",
}

# Trailing 12-digit COCO image id of a file name ("COCO_val2014_000000397133.jpg").
_COCO_ID_RE = re.compile(r"(\d{12})(\.[A-Za-z0-9]+)$")

_FED_FIELDS = ("neg_category_ids", "not_exhaustive_category_ids")


@dataclass
class Problem:
    """One thing wrong with an annotation file or an image it references.

    ``file``: the file the problem is in (the annotation file, or an image file that cannot be
    decoded); ``field``: where in it, as a JSON path such as ``categories[3].frequency``;
    ``message``: what is wrong and what was expected.
    """

    file: str
    field: str
    message: str


class _Collector:
    """Accumulates problems; keeps at most ``limit`` (``None``: all) and counts the rest."""

    def __init__(self, file: str, limit: int | None) -> None:
        self.file = file
        self.limit = limit
        self.kept: list[Problem] = []
        self.total = 0

    def add(self, field: str, message: str, file: str | None = None) -> None:
        self.total += 1
        if self.limit is None or len(self.kept) < self.limit:
            self.kept.append(Problem(self.file if file is None else file, field, message))

    def result(self) -> list[Problem]:
        if self.limit is None or self.total <= self.limit:
            return list(self.kept)
        # Capped: the first (limit - 1) problems, then one summary line, so len == limit.
        shown = self.kept[: self.limit - 1]
        more = self.total - len(shown)
        return shown + [Problem(self.file, "…", f"… and {more} more problems")]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _short(v: Any, n: int = 80) -> str:
    s = repr(v)
    return s if len(s) <= n else s[: n - 1] + "…"


def _normalize_version(version: str | None) -> str | None:
    if version is None:
        return None
    key = str(version).strip().lower()
    if key not in _VERSION_ALIASES:
        raise ValueError(f"unknown LVIS version {version!r}; valid: 'v0.5', 'v1'")
    return _VERSION_ALIASES[key]


def _detect_version(images: list[Any]) -> str:
    """'v0.5' if any image carries a ``file_name`` (v0.5 files have it), else 'v1'."""
    for im in images:
        if isinstance(im, dict) and isinstance(im.get("file_name"), str):
            return "v0.5"
    return "v1"


def _candidate_names(info: dict[str, Any], version: str) -> list[str]:
    """File names (relative to the image root) under which an image may be stored, best first."""
    names: list[str] = []
    file_name = info.get("file_name")
    coco_url = info.get("coco_url")
    if version == "v0.5" and isinstance(file_name, str) and file_name:
        names.append(file_name)
        m = _COCO_ID_RE.search(os.path.basename(file_name))
        if m:
            names.append(m.group(1) + m.group(2))  # COCO 2017 naming: "000000397133.jpg"
    if isinstance(coco_url, str) and coco_url.strip("/"):
        # "http://images.cocodataset.org/train2017/x.jpg" → "train2017/x.jpg" (an image root holding
        # COCO's split folders, as LVIS v1 mixes train2017 and val2017 images), then "x.jpg"
        names.append("/".join(coco_url.rstrip("/").split("/")[-2:]))
        names.append(os.path.basename(coco_url.rstrip("/")))
    if version == "v1" and isinstance(file_name, str) and file_name:
        names.append(file_name)
    seen: set[str] = set()
    return [n for n in names if not (n in seen or seen.add(n))]


def image_path_candidates(info: dict[str, Any], image_root: str | Path, version: str | None = None) -> list[Path]:
    """Where the image of LVIS ``images`` record ``info`` may lie under ``image_root``, best first.

    v0.5: ``image_root / file_name``, then the COCO-2017 name built from the trailing 12-digit id of
    ``file_name`` ("COCO_val2014_000000397133.jpg" → "000000397133.jpg"), then ``coco_url``'s parts.
    v1: the last two parts of ``coco_url`` ("train2017/x.jpg"), then its basename (then
    ``file_name`` if one is present). ``version=None`` uses v0.5 rules when ``file_name`` is present.
    """
    v = _normalize_version(version) or ("v0.5" if isinstance(info.get("file_name"), str) else "v1")
    return [Path(image_root) / name for name in _candidate_names(info, v)]


def resolve_image_path(
    info: dict[str, Any], image_root: str | Path, version: str | None = None
) -> Path | None:
    """The first of ``image_path_candidates`` that exists, or ``None`` when none does."""
    return next((p for p in image_path_candidates(info, image_root, version) if p.is_file()), None)


def _decode_problem(path: Path, info: dict[str, Any]) -> str | None:
    """Decode ``path`` fully with PIL; the reason it is unusable, or ``None`` when it is fine."""
    try:
        with Image.open(path) as im:
            im.load()
            w, h = im.size
    except Exception as e:  # noqa: BLE001 — any decoder failure is a reportable problem
        return f"cannot decode image file ({type(e).__name__}: {e})"
    iw, ih = info.get("width"), info.get("height")
    if _is_int(iw) and _is_int(ih) and (w, h) != (iw, ih):
        return f"image is {w}x{h} pixels but the annotation file says {iw}x{ih}"
    return None


def _check_unique_id(out: Any, field: str, value: Any, seen: set[int], kind: str) -> None:
    """Report ``value`` unless it is an integer id not seen before; remember it when it is."""
    if not _is_int(value):
        out.add(f"{field}.id", f"expected an integer id, got {_short(value)}")
    elif value in seen:
        out.add(f"{field}.id", f"duplicate {kind} id {value}")
    else:
        seen.add(value)


def check_lvis(
    ann_file: str | Path,
    image_root: str | Path | None,
    *,
    version: str | None = None,
    check_images: bool | Literal["all"] = True,
    max_problems: int | None = 50,
    frequency_rule: bool = True,
) -> list[Problem]:
    """Validate the LVIS-format file ``ann_file`` and its images; every problem found, or ``[]``.

    Args:
        ann_file: the annotation JSON file.
        image_root: the folder holding the images (``None`` skips the image checks).
        version: ``"v0.5"`` or ``"v1"`` (aliases ``"lvis-v0.5"``, ``"lvis-v1"``) to demand that
            version's image path field (v0.5 ``file_name``, v1 ``coco_url``) and its category
            count (1230 / 1203); ``None`` auto-detects the path convention (``file_name`` present →
            v0.5) and does not check the category count.
        check_images: ``True``: every referenced image must exist under ``image_root`` and the
            first :data:`DECODE_SAMPLE` that exist must decode with PIL at the annotated size;
            ``"all"``: decode every image; ``False``: no image checks.
        max_problems: at most this many problems are returned; when there are more, the last one
            says "… and K more problems". ``None``: no cap.
        frequency_rule: check each category's ``frequency`` against LVIS's rule applied to its
            ``image_count`` (r ≤ 10, c 11–100, f > 100). The rule holds for training counts; turn
            it off for a file whose ``image_count`` counts another split.

    Never raises on bad data (only on invalid arguments): unreadable files, non-JSON content and
    malformed records all become :class:`Problem` entries.
    """
    if max_problems is not None and int(max_problems) < 1:
        raise ValueError(f"max_problems must be >= 1 or None, got {max_problems!r}")
    if check_images not in (True, False, "all"):
        raise ValueError(f"check_images must be True, False or 'all', got {check_images!r}")
    given_version = _normalize_version(version)
    ann_path = Path(ann_file)
    out = _Collector(str(ann_path), None if max_problems is None else int(max_problems))

    # --- the file itself ------------------------------------------------------------------------
    try:
        with open(ann_path, "r", encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        out.add("<file>", "annotation file not found")
        return out.result()
    except (UnicodeDecodeError, ValueError) as e:
        out.add("<file>", f"not parseable JSON ({e})")
        return out.result()
    except OSError as e:
        out.add("<file>", f"cannot read the annotation file ({e})")
        return out.result()
    if not isinstance(data, dict):
        out.add("<top level>", f"expected a JSON object, got {type(data).__name__}")
        return out.result()

    lists: dict[str, list[Any]] = {}
    for key in ("images", "annotations", "categories"):
        if key not in data:
            out.add(key, "missing top-level key (expected a list)")
        elif not isinstance(data[key], list):
            out.add(key, f"expected a list, got {type(data[key]).__name__}")
        else:
            lists[key] = data[key]
    images = lists.get("images", [])
    anns = lists.get("annotations", [])
    cats = lists.get("categories", [])
    eff_version = given_version or _detect_version(images)

    # --- categories -----------------------------------------------------------------------------
    cat_ids: set[int] = set()
    if "categories" in lists and not cats:
        out.add("categories", "empty list (expected at least one category)")
    if given_version is not None and "categories" in lists:
        want = EXPECTED_NUM_CATEGORIES[given_version]
        if len(cats) != want:
            out.add("categories", f"LVIS {given_version} has {want} categories, found {len(cats)}")
    for k, c in enumerate(cats):
        f = f"categories[{k}]"
        if not isinstance(c, dict):
            out.add(f, f"expected an object, got {_short(c)}")
            continue
        cid = c.get("id")
        _check_unique_id(out, f, cid, cat_ids, "category")
        if not isinstance(c.get("name"), str):
            out.add(f"{f}.name", f"expected a string, got {_short(c.get('name'))}")
        freq = c.get("frequency")
        freq_ok = freq in ("r", "c", "f")
        if "frequency" not in c:
            out.add(f"{f}.frequency", "missing (expected 'r', 'c' or 'f')")
        elif not freq_ok:
            out.add(f"{f}.frequency", f"expected 'r', 'c' or 'f', got {_short(freq)}")
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

    # --- images ---------------------------------------------------------------------------------
    img_index: dict[int, int] = {}  # image id -> position in 'images'
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
        has_fn = isinstance(im.get("file_name"), str) and bool(im.get("file_name"))
        has_url = isinstance(im.get("coco_url"), str) and bool(im.get("coco_url"))
        if given_version == "v0.5" and not has_fn:
            out.add(f"{f}.file_name", "missing (LVIS v0.5 images are found by file_name)")
        elif given_version == "v1" and not has_url:
            out.add(f"{f}.coco_url", "missing (LVIS v1 images are found by the basename of coco_url)")
        elif given_version is None and not (has_fn or has_url):
            out.add(f"{f}.{path_field}", "missing: neither file_name (v0.5) nor coco_url (v1) present")
        for lst in _FED_FIELDS:
            if lst not in im:
                continue
            ids = im[lst]
            if not isinstance(ids, list):
                out.add(f"{f}.{lst}", f"expected a list of category ids, got {_short(ids)}")
                continue
            unknown = [x for x in ids if not (_is_int(x) and x in cat_ids)]
            if unknown and "categories" in lists:
                out.add(f"{f}.{lst}", f"unknown category ids {_short(unknown)} (image id {_short(iid)})")

    # --- annotations ----------------------------------------------------------------------------
    ann_ids: set[int] = set()
    positives: dict[int, set[int]] = {}
    for k, a in enumerate(anns):
        f = f"annotations[{k}]"
        if not isinstance(a, dict):
            out.add(f, f"expected an object, got {_short(a)}")
            continue
        aid = a.get("id")
        _check_unique_id(out, f, aid, ann_ids, "annotation")
        iid, cid = a.get("image_id"), a.get("category_id")
        if not _is_int(iid):
            out.add(f"{f}.image_id", f"expected an integer image id, got {_short(iid)}")
        elif iid not in img_index and "images" in lists:
            out.add(f"{f}.image_id", f"unknown image id {iid} (not in 'images')")
        if not _is_int(cid):
            out.add(f"{f}.category_id", f"expected an integer category id, got {_short(cid)}")
        elif cid not in cat_ids and "categories" in lists:
            out.add(f"{f}.category_id", f"unknown category id {cid} (not in 'categories')")
        elif _is_int(iid):
            positives.setdefault(iid, set()).add(cid)
        bbox = a.get("bbox")
        if "bbox" not in a:
            out.add(f"{f}.bbox", "missing (expected [x, y, w, h])")
        elif not isinstance(bbox, list) or len(bbox) != 4 or not all(map(_is_number, bbox)):
            out.add(f"{f}.bbox", f"expected [x, y, w, h]: 4 finite numbers, got {_short(bbox)}")
        elif bbox[2] <= 0 or bbox[3] <= 0:
            out.add(f"{f}.bbox", f"expected w > 0 and h > 0, got {_short(bbox)}")

    # A category annotated on an image cannot also be verified absent from it (federated rules).
    for iid, k in img_index.items():
        neg = images[k].get("neg_category_ids")
        if isinstance(neg, list) and iid in positives:
            both = sorted(positives[iid].intersection(x for x in neg if _is_int(x)))
            if both:
                out.add(
                    f"images[{k}].neg_category_ids",
                    f"categories {_short(both)} are annotated on image {iid} yet listed as negative",
                )

    # --- image files ----------------------------------------------------------------------------
    if check_images is not False and image_root is not None and images:
        _check_image_files(out, images, Path(image_root), eff_version, check_images == "all")

    return out.result()


def _check_image_files(
    out: _Collector, images: list[Any], root: Path, version: str, decode_all: bool
) -> None:
    """Presence of every image under ``root``; decoding of the first DECODE_SAMPLE (or all)."""
    if not root.is_dir():
        out.add("<image root>", f"image folder not found: {root}")
        return
    decoded = 0
    for k, im in enumerate(images):
        if not isinstance(im, dict):
            continue
        names = _candidate_names(im, version)
        if not names:
            continue  # already reported as a missing file_name / coco_url
        path = resolve_image_path(im, root, version)
        field = f"images[{k}].{'file_name' if version == 'v0.5' else 'coco_url'}"
        if path is None:
            tried = ", ".join(str(root / n) for n in names)
            out.add(field, f"image file not found (image id {_short(im.get('id'))}; looked for {tried})")
            continue
        if decode_all or decoded < DECODE_SAMPLE:
            decoded += 1
            why = _decode_problem(path, im)
            if why is not None:
                out.add(field, f"{why} (image id {_short(im.get('id'))})", file=str(path))


def format_report(problems: list[Problem]) -> str:
    """A human report: one ``FILE: FIELD: MESSAGE`` line per problem, or ``OK: no problems found``."""
    if not problems:
        return "OK: no problems found"
    return "\n".join(f"{p.file}: {p.field}: {p.message}" for p in problems)
