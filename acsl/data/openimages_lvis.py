"""The real Open Images Challenge 2019 files as the LVIS-format files the loaders read (paper §5).

``acsl data download openimages`` puts the challenge's CSV and JSON files into
``<root>/openimages/annotations``; the images go to ``<root>/openimages/images/{train,validation}``.
``openimages_lvis_files`` reads one split at a time with ``acsl.data.openimages.read_openimages`` and
writes its internal form, which already carries the LVIS fields the loaders need plus the ``hierarchy``
(for the multi-label loss and the challenge metric) and the verified image-level labels, as
``<root>/openimages/annotations/lvis-format/openimages_{train,val}.json``: once, atomically, and again
only when a source file or the number of images in a folder changed. Each category gets its image and
box counts on the ancestor-expanded labels it is trained on, and a ``frequency`` group in the real
Challenge 2019 shares (``acsl.data.openimages_groups``); the val file carries the training statistics
(LVIS's convention), so both splits share one category list.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..io import atomic_write_text
from .fingerprint import file_sha256
from .openimages import read_openimages
from .hierarchy import ClassHierarchy
from .openimages_groups import expanded_counts, openimages_groups

#: Bumped whenever what is written for the same sources changes; older files are rewritten.
CONVERT_VERSION = "acsl-openimages-lvis-2"  # 2: counts on expanded labels, groups in the real shares
CHALLENGE = "challenge-2019"
CLASSES_FILE = f"{CHALLENGE}-classes-description-500.csv"
HIERARCHY_FILE = f"{CHALLENGE}-label500-hierarchy.json"
#: our split name → the challenge's
SPLITS = {"train": "train", "val": "validation"}


def annotations_dir(root: str | Path) -> Path:
    return Path(root) / "openimages" / "annotations"


def images_dir(root: str | Path, split: str) -> Path:
    """``<root>/openimages/images/<train|validation>``."""
    return Path(root) / "openimages" / "images" / SPLITS[split]


def source_files(root: str | Path, split: str) -> dict[str, Path]:
    """The challenge files one split is read from: boxes, classes, hierarchy, verified image-level labels."""
    folder, name = annotations_dir(root), SPLITS[split]
    return {"boxes": folder / f"{CHALLENGE}-{name}-detection-bbox.csv", "classes": folder / CLASSES_FILE,
            "hierarchy": folder / HIERARCHY_FILE, "labels": folder / f"{CHALLENGE}-{name}-detection-human-imagelabels.csv"}


def converted_file(root: str | Path, split: str) -> Path:
    return annotations_dir(root) / "lvis-format" / f"openimages_{split}.json"


def _count_images(folder: Path) -> int:
    with os.scandir(folder) as entries:
        return sum(1 for entry in entries if entry.name.endswith(".jpg"))


def _sources_key(root: Path) -> dict[str, Any]:
    """What the converted files are a function of: every source file's digest and the image counts."""
    key: dict[str, Any] = {"version": CONVERT_VERSION}
    for split in SPLITS:
        folder = images_dir(root, split)
        if not folder.is_dir() or _count_images(folder) == 0:
            from .download import DataMissingError

            raise DataMissingError(f"no Open Images {SPLITS[split]} images in {folder}: fetch the images of the "
                                   f"challenge's {SPLITS[split]} split (<ImageID>.jpg) into that folder")
        key[f"{split}_images"] = _count_images(folder)
        for name, path in source_files(root, split).items():
            key[f"{split}_{name}"] = file_sha256(path)
    return key


def _up_to_date(path: Path, key: dict[str, Any]) -> bool:
    try:
        info = json.loads(path.read_text()).get("info", {})
    except (OSError, ValueError):
        return False
    return info.get("sources") == key


def _read_split(root: Path, split: str) -> dict[str, Any]:
    files = source_files(root, split)
    data = read_openimages(files["boxes"], files["classes"], files["hierarchy"], images_dir(root, split), files["labels"])
    missing = data["info"]["missing_images"]
    if missing:
        print(f"note: {len(missing)} Open Images {SPLITS[split]} images named by the annotations are not in "
              f"{images_dir(root, split)} and are left out (first: {', '.join(missing[:5])})")
    return data


def _count_expanded(train: dict[str, Any]) -> None:
    """Give each train category its image and box counts on the ancestor-expanded labels and its frequency
    group in the real Challenge 2019 shares (``acsl.data.openimages_groups``), in place."""
    ids = [category["id"] for category in train["categories"]]
    image_counts, instance_counts = expanded_counts(train["annotations"],
                                                    ClassHierarchy.from_category_json(train["hierarchy"]), ids)
    groups = openimages_groups(image_counts, instance_counts)
    for category in train["categories"]:
        category.update(image_count=image_counts[category["id"]], instance_count=instance_counts[category["id"]],
                        frequency=groups[category["id"]])


def openimages_lvis_files(root: str | Path) -> tuple[tuple[Path, Path], tuple[Path, Path]]:
    """((train file, train images), (val file, val images)) of the real Open Images challenge under
    ``root``, converted first where missing or stale (module docstring). A ``DataMissingError`` names
    what is missing and how to fetch it."""
    from .download import require_data

    root = Path(root)
    require_data("openimages", root)
    key = _sources_key(root)
    train_path, val_path = converted_file(root, "train"), converted_file(root, "val")
    if not (_up_to_date(train_path, key) and _up_to_date(val_path, key)):
        train = _read_split(root, "train")
        _count_expanded(train)
        val = _read_split(root, "val")
        stats = {c["id"]: c for c in train["categories"]}
        for category in val["categories"]:  # LVIS's convention: val carries the training statistics
            for field in ("image_count", "instance_count", "frequency"):
                category[field] = stats[category["id"]][field]
        for path, data in ((train_path, train), (val_path, val)):
            data["info"]["sources"] = key
            try:
                atomic_write_text(path, json.dumps(data))  # compact: the train file holds 1.7M images
            except OSError as error:
                raise PermissionError(f"cannot write the LVIS-format Open Images file {path} ({error}); make "
                                      f"{path.parent.parent} writable or convert once where it is") from error
    return (train_path, images_dir(root, "train")), (val_path, images_dir(root, "val"))
