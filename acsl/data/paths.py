"""Where the image of an LVIS ``images`` record lies under an image folder.

Real v0.5 ``file_name``\\ s are COCO-2014 names ("COCO_val2014_000000397133.jpg") while the images are
distributed as COCO 2017 files ("000000397133.jpg"), so a v0.5 image is also found by its trailing
12-digit COCO id; v1 images have no ``file_name`` and are found by ``coco_url`` (Gupta et al., *LVIS*,
CVPR 2019, and the released v0.5 / v1 files). Both the dataset (:mod:`acsl.data.lvis_dataset`) and
``acsl data check`` (:mod:`acsl.data.check`) resolve paths here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

__all__ = ["candidate_names", "image_path_candidates", "normalize_version", "resolve_image_path"]

_VERSION_ALIASES: dict[str, str] = {
    "v0.5": "v0.5", "0.5": "v0.5", "lvis-v0.5": "v0.5", "lvis_v0.5": "v0.5",
    "v1": "v1", "1": "v1", "v1.0": "v1", "lvis-v1": "v1", "lvis_v1": "v1",
}

# Trailing 12-digit COCO image id of a file name ("COCO_val2014_000000397133.jpg").
_COCO_ID_RE = re.compile(r"(\d{12})(\.[A-Za-z0-9]+)$")


def normalize_version(version: str | None) -> str | None:
    """``"v0.5"`` or ``"v1"`` for any accepted alias (``"lvis-v1"``, ``"0.5"``, ...); ``None`` stays
    ``None``; ``ValueError`` for anything else."""
    if version is None:
        return None
    key = str(version).strip().lower()
    if key not in _VERSION_ALIASES:
        raise ValueError(f"unknown LVIS version {version!r}; valid: 'v0.5', 'v1'")
    return _VERSION_ALIASES[key]


def candidate_names(info: dict[str, Any], version: str) -> list[str]:
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
    v = normalize_version(version) or ("v0.5" if isinstance(info.get("file_name"), str) else "v1")
    return [Path(image_root) / name for name in candidate_names(info, v)]


def resolve_image_path(
    info: dict[str, Any], image_root: str | Path, version: str | None = None
) -> Path | None:
    """The first of ``image_path_candidates`` that exists, or ``None`` when none does."""
    return next((p for p in image_path_candidates(info, image_root, version) if p.is_file()), None)
