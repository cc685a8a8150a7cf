"""``acsl data check``: validate an LVIS-format annotation file and its images.

:func:`check_lvis` inspects an annotation file for everything the loaders
(:class:`acsl.data.lvis_dataset.LVISDetection`), the samplers (``frequency``, ``image_count``) and
the federated LVIS evaluator (docs/ARCHITECTURE.md, "Evaluation rules": ``neg_category_ids``,
``not_exhaustive_category_ids``, r/c/f groups) rely on, and checks that the images it references are
present and decodable. The records are checked by :func:`acsl.data.validate.validate_records`, the
one validation the loaders share (:func:`acsl.data.lvis_dataset.validate_lvis_json` refuses a file at
its first problem); here it collects *every* problem as a :class:`~acsl.data.problems.Problem` and
never raises on bad data, so the command can print a full report instead of a traceback
(:func:`~acsl.data.problems.format_report`).

The rules are listed in :mod:`acsl.data.validate`; image paths are resolved by :mod:`acsl.data.paths`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from acsl.data.paths import candidate_names, image_path_candidates, normalize_version, resolve_image_path
from acsl.data.problems import Problem, ProblemCollector, format_report
from acsl.data.validate import EXPECTED_NUM_CATEGORIES, _is_int, _short, validate_records

__all__ = [
    "DECODE_SAMPLE",
    "EXPECTED_NUM_CATEGORIES",
    "Problem",
    "check_lvis",
    "format_report",
    "image_path_candidates",
    "resolve_image_path",
]

#: Number of images (in file order) decoded with PIL when ``check_images=True``.
DECODE_SAMPLE: int = 20

_UNREADABLE = object()  # what _load_annotation_file gives for a file it could not parse (JSON null is data)

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
    given_version = normalize_version(version)
    ann_path = Path(ann_file)
    out = ProblemCollector(str(ann_path), None if max_problems is None else int(max_problems))

    data = _load_annotation_file(out, ann_path)
    if data is _UNREADABLE:
        return out.result()
    images, eff_version = validate_records(out, data, version=given_version, frequency_rule=frequency_rule)
    if check_images is not False and image_root is not None and images:
        _check_image_files(out, images, Path(image_root), eff_version, check_images == "all")
    return out.result()


def _load_annotation_file(out: ProblemCollector, ann_path: Path) -> Any:
    """The parsed JSON of ``ann_path``; ``_UNREADABLE`` (and a problem) when it cannot be read or parsed."""
    try:
        with open(ann_path, "r", encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        out.add("<file>", "annotation file not found")
        return _UNREADABLE
    except (UnicodeDecodeError, ValueError) as e:
        out.add("<file>", f"not parseable JSON ({e})")
        return _UNREADABLE
    except OSError as e:
        out.add("<file>", f"cannot read the annotation file ({e})")
        return _UNREADABLE
    return data


def _check_image_files(
    out: ProblemCollector, images: list[Any], root: Path, version: str, decode_all: bool
) -> None:
    """Presence of every image under ``root``; decoding of the first DECODE_SAMPLE (or all)."""
    if not root.is_dir():
        out.add("<image root>", f"image folder not found: {root}")
        return
    decoded = 0
    for k, im in enumerate(images):
        if not isinstance(im, dict):
            continue
        names = candidate_names(im, version)
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

