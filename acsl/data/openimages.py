"""Read the Open Images (challenge) annotation files into the project's internal, LVIS-like form.

The files (Open Images V5 / Challenge 2019 layout; Kuznetsova et al., IJCV 2020):
- boxes CSV, one box per row with a header: ``ImageID``, ``LabelName``, ``XMin``, ``XMax``, ``YMin``, ``YMax``
  (coordinates normalised to [0, 1]) and the flags ``IsGroupOf``, ``IsOccluded``, ``IsTruncated`` (0/1;
  absent columns read as 0; other columns such as ``Source``, ``Confidence``, ``IsDepiction`` are ignored);
- class descriptions CSV, ``LabelName,DisplayName`` per row (the challenge's file has no header; one is
  accepted): the classes, in file order;
- the label hierarchy JSON (``acsl.data.hierarchy``);
- image-level labels CSV (optional): ``ImageID``, ``LabelName``, ``Confidence`` — 1 a verified positive,
  0 a verified negative (the metric's "verified labels").

The internal form has ``images`` (``id``, ``file_name`` = ``<ImageID>.jpg``, ``width``, ``height``,
``openimages_id``, ``pos_category_ids``, ``neg_category_ids``), ``annotations`` (``bbox`` in pixels
[x, y, w, h], ``area``, ``is_group_of``, ``is_occluded``, ``is_truncated``), ``categories`` (``id`` 1..C in
the description file's order, ``name``, ``label_name``, ``image_count``, ``instance_count``) and
``hierarchy`` (category id → parent ids). Image sizes come from the image files, so a directory of images
is needed; images missing from it are left out and listed in ``info["missing_images"]``.

Every malformed row is reported with its file, line and column.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from .hierarchy import ClassHierarchy, load_hierarchy

BOX_COLUMNS = ("ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax")
FLAG_COLUMNS = ("IsGroupOf", "IsOccluded", "IsTruncated")


class OpenImagesFormatError(ValueError):
    """A malformed Open Images annotation file; the message names the file, line and column."""


@dataclass(frozen=True)
class Box:
    image_id: str
    label: str
    x_min: float
    x_max: float
    y_min: float
    y_max: float
    is_group_of: bool
    is_occluded: bool
    is_truncated: bool


def _rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV with a header holding ``required``."""
    try:
        handle = open(path, newline="", encoding="utf-8")
    except FileNotFoundError as error:
        raise FileNotFoundError(f"Open Images annotation file not found: {path}") from error
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise OpenImagesFormatError(f"{path}, line 1: the header lacks the column(s) {missing}; "
                                        f"expected at least {list(required)}, got {reader.fieldnames}")
        for row in reader:
            yield reader.line_num, row


def _fail(path: Path, line: int, column: str, expected: str, got: Any) -> OpenImagesFormatError:
    return OpenImagesFormatError(f"{path}, line {line}, column {column}: expected {expected}, got {got!r}")


def _number(path: Path, line: int, row: dict[str, str], column: str) -> float:
    text = row.get(column)
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise _fail(path, line, column, "a number in [0, 1]", text) from None
    if not 0.0 <= value <= 1.0:
        raise _fail(path, line, column, "a number in [0, 1] (normalised coordinate)", text)
    return value


def _flag(path: Path, line: int, row: dict[str, str], column: str) -> bool:
    text = row.get(column)
    if text is None or text == "":
        return False
    if text not in ("0", "1", "-1"):  # -1: "unknown" in some releases, read as not set
        raise _fail(path, line, column, "0 or 1", text)
    return text == "1"


def read_class_descriptions(path: str | Path) -> dict[str, str]:
    """Label name (MID) → display name, in file order; a header row ``LabelName,DisplayName`` is skipped."""
    path = Path(path)
    try:
        handle = open(path, newline="", encoding="utf-8")
    except FileNotFoundError as error:
        raise FileNotFoundError(f"Open Images class-description file not found: {path}") from error
    classes: dict[str, str] = {}
    with handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            if not row or (line == 1 and row[0] == "LabelName"):
                continue
            if len(row) != 2 or not row[0].strip():
                raise _fail(path, line, "LabelName,DisplayName", "two fields, a label name and a display name", ",".join(row))
            if row[0] in classes:
                raise _fail(path, line, "LabelName", "each label name once", row[0])
            classes[row[0]] = row[1]
    if not classes:
        raise OpenImagesFormatError(f"{path}: no classes")
    return classes


def read_boxes(path: str | Path, classes: Mapping[str, str], skipped: list[int] | None = None) -> list[Box]:
    """The boxes of a boxes CSV, checked: known label, coordinates in [0, 1] with min ≤ max, 0/1 flags.
    A box of zero width or height is left out and its line appended to ``skipped``; min > max is an error."""
    path = Path(path)
    boxes = []
    for line, row in _rows(path, BOX_COLUMNS):
        if not row["ImageID"]:
            raise _fail(path, line, "ImageID", "an image id", row["ImageID"])
        if row["LabelName"] not in classes:
            raise _fail(path, line, "LabelName", "a label name of the class-description file", row["LabelName"])
        x_min, x_max = _number(path, line, row, "XMin"), _number(path, line, row, "XMax")
        y_min, y_max = _number(path, line, row, "YMin"), _number(path, line, row, "YMax")
        if x_max < x_min:
            raise _fail(path, line, "XMax", f"a value above XMin = {x_min}", row["XMax"])
        if y_max < y_min:
            raise _fail(path, line, "YMax", f"a value above YMin = {y_min}", row["YMax"])
        if x_max == x_min or y_max == y_min:
            if skipped is not None:
                skipped.append(line)
            continue
        flags = [_flag(path, line, row, column) for column in FLAG_COLUMNS]
        boxes.append(Box(row["ImageID"], row["LabelName"], x_min, x_max, y_min, y_max, *flags))
    return boxes


def read_image_labels(path: str | Path, classes: Mapping[str, str]) -> dict[str, tuple[set[str], set[str]]]:
    """ImageID → (verified positive labels, verified negative labels); labels outside ``classes`` are skipped
    (the image-level files cover thousands of classes, the detection challenge 500)."""
    path = Path(path)
    labels: dict[str, tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
    for line, row in _rows(path, ("ImageID", "LabelName", "Confidence")):
        confidence = row["Confidence"]
        if confidence not in ("0", "1", "0.0", "1.0"):
            raise _fail(path, line, "Confidence", "1 (verified present) or 0 (verified absent)", confidence)
        if row["LabelName"] in classes:
            positive, negative = labels[row["ImageID"]]
            (positive if float(confidence) == 1 else negative).add(row["LabelName"])
    return dict(labels)


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the image file's header, or None when the file is missing."""
    try:
        with Image.open(path) as image:
            return image.size
    except FileNotFoundError:
        return None


def read_openimages(boxes_csv: str | Path, classes_csv: str | Path, hierarchy_json: str | Path, image_dir: str | Path,
                    image_labels_csv: str | Path | None = None) -> dict[str, Any]:
    """The internal form (module docstring) of one split. Images are those with a box or an image-level
    label; ``image_dir`` holds ``<ImageID>.jpg``."""
    classes = read_class_descriptions(classes_csv)
    category_id = {label: k for k, label in enumerate(classes, start=1)}
    hierarchy: ClassHierarchy = load_hierarchy(hierarchy_json).relabel(category_id)
    degenerate: list[int] = []
    boxes = read_boxes(boxes_csv, classes, skipped=degenerate)
    image_labels = read_image_labels(image_labels_csv, classes) if image_labels_csv is not None else {}
    image_ids = list(dict.fromkeys([b.image_id for b in boxes] + list(image_labels)))
    image_dir = Path(image_dir)
    images, missing, number = [], [], {}
    for openimages_id in image_ids:
        size = image_size(image_dir / f"{openimages_id}.jpg")
        if size is None:
            missing.append(openimages_id)
            continue
        number[openimages_id] = len(images) + 1
        positive, negative = image_labels.get(openimages_id, (set(), set()))
        images.append({"id": number[openimages_id], "file_name": f"{openimages_id}.jpg", "width": size[0],
                       "height": size[1], "openimages_id": openimages_id,
                       "pos_category_ids": sorted(category_id[c] for c in positive),
                       "neg_category_ids": sorted(category_id[c] for c in negative)})
    sizes = {image["openimages_id"]: (image["width"], image["height"]) for image in images}
    annotations, image_sets, instances = [], defaultdict(set), defaultdict(int)
    for box in boxes:
        if box.image_id not in sizes:
            continue
        width, height = sizes[box.image_id]
        x, y = box.x_min * width, box.y_min * height
        w, h = (box.x_max - box.x_min) * width, (box.y_max - box.y_min) * height
        cid = category_id[box.label]
        annotations.append({"id": len(annotations) + 1, "image_id": number[box.image_id], "category_id": cid,
                            "bbox": [x, y, w, h], "area": w * h, "is_group_of": box.is_group_of,
                            "is_occluded": box.is_occluded, "is_truncated": box.is_truncated})
        image_sets[cid].add(box.image_id)
        instances[cid] += 1
    categories = [{"id": category_id[label], "name": name, "label_name": label,
                   "image_count": len(image_sets[category_id[label]]), "instance_count": instances[category_id[label]]}
                  for label, name in classes.items()]
    return {"info": {"source": str(boxes_csv), "missing_images": missing, "degenerate_box_lines": degenerate},
            "images": images,
            "annotations": annotations, "categories": categories,
            "hierarchy": {str(c): list(p) for c, p in hierarchy.parents.items()}}
