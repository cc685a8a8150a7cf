"""The catalogue of real datasets: their archives, URLs, checksums and on-disk layout.

The ``lvis-v0.5`` / ``lvis-v1`` / ``openimages`` profiles train on data the user downloads
(docs/ARCHITECTURE.md, "Profiles and scale"); :data:`DATASETS` says what ``acsl data download NAME``
fetches and where it lands, and :func:`require_data` tells a command that needs a dataset what is
missing and the exact command that fetches it.

Checksums, plainly. Neither cocodataset.org nor lvisdataset.org publishes checksums on its download
page. What is recorded in :data:`DATASETS` comes from third-party download scripts that check
these exact files (the provenance is written next to each value in ``Archive.source``):

* COCO ``train2017.zip`` / ``val2017.zip``: the md5 sums and byte sizes that many independent
  projects' download scripts agree on (MLPerf / NVIDIA and Intel object-detection scripts,
  ContinualAI Avalanche's LVIS archive list, among others; the size of ``val2017.zip`` is also
  what the server sends as ``Content-Length``);
* LVIS v1 ``lvis_v1_{train,val}.json.zip``: the md5 sums in ContinualAI Avalanche's LVIS archive
  list (``avalanche/benchmarks/datasets/lvis_dataset/lvis_data.py``); the val value is
  independently reproduced by a second project's notes. No size is recorded;
* LVIS v0.5 and the Open Images files: nothing is documented anywhere we could find, so nothing is
  recorded (the first download is trusted on first use, see :mod:`acsl.data.download.verify`).

Layout after extraction (what the loaders expect)::

    <root>/lvis_v0.5/annotations/lvis_v0.5_{train,val}.json
    <root>/lvis_v1/annotations/lvis_v1_{train,val}.json
    <root>/coco/train2017/*.jpg
    <root>/coco/val2017/*.jpg
    <root>/openimages/annotations/challenge-2019-*.{csv,json}   (plain files, moved into place once verified)

LVIS v0.5 ``file_name`` and LVIS v1 ``coco_url`` both resolve into the two COCO image directories,
so the LVIS datasets need ``coco2017`` as well for training (their own archives hold annotations
only).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Archive",
    "DatasetSpec",
    "DATASETS",
    "OPENIMAGES_FILES",
    "CHECKSUM_RECORD",
    "DOWNLOAD_DIR",
    "DownloadError",
    "DataMissingError",
    "dataset_spec",
    "fetch_command",
    "missing_data",
    "require_data",
]

#: Name of the trust-on-first-use checksum record, written directly under the data root.
CHECKSUM_RECORD = ".acsl-checksums.json"
#: Folder (under the data root) that holds ``.part`` files and archives being verified.
DOWNLOAD_DIR = ".downloads"


class DownloadError(RuntimeError):
    """A download, verification or extraction failed; the message says what to do next."""


class DataMissingError(FileNotFoundError):
    """Data a command needs is not on disk; the message lists it and the command that fetches it."""


@dataclass(frozen=True)
class Archive:
    """One downloadable archive and where its contents land.

    ``extract_to`` and ``expected_paths`` are relative to the data root; ``expected_paths`` are
    what must exist after extraction (files or directories). ``size_bytes``, ``sha256`` and ``md5``
    are ``None`` unless documented somewhere (see the module docstring); ``source`` says where the
    recorded values come from.
    """

    url: str
    filename: str
    size_bytes: int | None
    sha256: str | None
    md5: str | None
    extract_to: str
    expected_paths: tuple[str, ...]
    source: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: a description and the archives that make it up."""

    name: str
    description: str
    archives: tuple[Archive, ...]

    @property
    def expected_paths(self) -> tuple[str, ...]:
        return tuple(p for a in self.archives for p in a.expected_paths)


_LVIS_BUCKET = "https://s3-us-west-2.amazonaws.com/dl.fbaipublicfiles.com/LVIS"
_COCO_ZIPS = "http://images.cocodataset.org/zips"
_NO_CHECKSUM = "no checksum documented; sha256 trusted on first use (<root>/.acsl-checksums.json)"
_AVALANCHE = (
    "md5 from ContinualAI Avalanche's LVIS archive list "
    "(avalanche/benchmarks/datasets/lvis_dataset/lvis_data.py); not published by lvisdataset.org"
)
_COCO_SRC = (
    "md5 and size agreed on by many independent download scripts (MLPerf/NVIDIA, Intel, "
    "ContinualAI Avalanche, ...); cocodataset.org itself publishes none"
)


def _lvis_archive(version: str, split: str, md5: str | None, source: str) -> Archive:
    name = f"lvis_{version}_{split}.json"
    return Archive(
        url=f"{_LVIS_BUCKET}/{name}.zip",
        filename=f"{name}.zip",
        size_bytes=None,
        sha256=None,
        md5=md5,
        extract_to=f"lvis_{version}/annotations",
        expected_paths=(f"lvis_{version}/annotations/{name}",),
        source=source,
    )


_OPENIMAGES_BUCKET = "https://storage.googleapis.com/openimages/challenge_2019"
#: The Open Images Challenge 2019 detection files (plain CSV / JSON, not archives; no checksum published).
OPENIMAGES_FILES = (
    "challenge-2019-classes-description-500.csv",
    "challenge-2019-label500-hierarchy.json",
    "challenge-2019-train-detection-bbox.csv",
    "challenge-2019-validation-detection-bbox.csv",
    "challenge-2019-train-detection-human-imagelabels.csv",
    "challenge-2019-validation-detection-human-imagelabels.csv",
)


def _openimages_file(name: str) -> Archive:
    return Archive(url=f"{_OPENIMAGES_BUCKET}/{name}", filename=name, size_bytes=None, sha256=None, md5=None,
                   extract_to="openimages/annotations", expected_paths=(f"openimages/annotations/{name}",),
                   source=_NO_CHECKSUM)


#: The registry behind ``acsl data download NAME``: the LVIS annotations, Open Images and COCO images.
DATASETS: dict[str, DatasetSpec] = {
    "lvis-v0.5": DatasetSpec(
        name="lvis-v0.5",
        description="LVIS v0.5 train/val annotations (1230 categories); images: coco2017",
        archives=(
            _lvis_archive("v0.5", "train", None, _NO_CHECKSUM),
            _lvis_archive("v0.5", "val", None, _NO_CHECKSUM),
        ),
    ),
    "lvis-v1": DatasetSpec(
        name="lvis-v1",
        description="LVIS v1 train/val annotations (1203 categories); images: coco2017",
        archives=(
            _lvis_archive("v1", "train", "4410d837f71203af226950447ef9d422", _AVALANCHE),
            _lvis_archive("v1", "val", "87734a7f895990b9552075d7ce723e27", _AVALANCHE),
        ),
    ),
    "openimages": DatasetSpec(
        name="openimages",
        description="Open Images Challenge 2019 object-detection annotations (500 classes): boxes, class "
                    "descriptions, the label hierarchy and verified image-level labels, train and val; images: "
                    "fetch them with your own tooling into <root>/openimages/images/{train,validation}",
        archives=tuple(_openimages_file(name) for name in OPENIMAGES_FILES),
    ),
    "coco2017": DatasetSpec(
        name="coco2017",
        description="COCO 2017 train and val images (about 19 GB), the images LVIS annotates",
        archives=(
            Archive(
                url=f"{_COCO_ZIPS}/train2017.zip",
                filename="train2017.zip",
                size_bytes=19_336_861_798,
                sha256=None,
                md5="cced6f7f71b7629ddf16f17bbcfab6b2",
                extract_to="coco",
                expected_paths=("coco/train2017",),
                source=_COCO_SRC,
            ),
            Archive(
                url=f"{_COCO_ZIPS}/val2017.zip",
                filename="val2017.zip",
                size_bytes=815_585_330,
                sha256=None,
                md5="442b8da7639aecaf257c1dceb8ba8c80",
                extract_to="coco",
                expected_paths=("coco/val2017",),
                source=_COCO_SRC,
            ),
        ),
    ),
}


def fetch_command(name: str, root: str | os.PathLike[str]) -> str:
    """The exact command line that downloads dataset ``name`` into ``root``."""
    return f"acsl data download {name} --root {root}"


def dataset_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` registered as ``name``; ``ValueError`` listing the known names if none."""
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise ValueError(f"unknown dataset {name!r}; known: {known}") from None


def missing_data(name: str, root: str | os.PathLike[str]) -> list[Path]:
    """Expected paths of dataset ``name`` under ``root`` that do not exist (empty: all present)."""
    root = Path(root)
    return [root / p for p in dataset_spec(name).expected_paths if not (root / p).exists()]


def require_data(name: str, root: str | os.PathLike[str]) -> list[Path]:
    """Return the expected paths of ``name``, or raise :class:`DataMissingError` listing what is
    missing and the exact command that fetches it, so a command that needs data that is not there
    fails with a clear message instead of a traceback deep in a loader."""
    missing = missing_data(name, root)
    if missing:
        lines = "\n".join(f"  - {p}" for p in missing)
        raise DataMissingError(
            f"dataset {name!r} is not complete under {root}; missing:\n{lines}\n"
            f"fetch it with:\n  {fetch_command(name, root)}"
        )
    return [Path(root) / p for p in dataset_spec(name).expected_paths]
