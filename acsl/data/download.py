"""Downloads of the real datasets: LVIS v0.5 / v1 annotations and the COCO 2017 images they use.

Issue 4 ("Real data"), DESIGN §1 (the ``lvis-v0.5`` / ``lvis-v1`` profiles need user downloads) and
§8 (no internet here: this code is real and documented for users, and is tested against a local
HTTP server on 127.0.0.1 serving small fake archives).

What :func:`download_dataset` guarantees, per archive:

* **idempotent** -- when every expected path already exists (and the checksum record, if any, agrees
  with the published checksum) it returns at once, without touching the network;
* **resumable** -- bytes go to ``<root>/.downloads/<filename>.part``; a later run continues it with an
  HTTP ``Range: bytes=N-`` request. A server that ignores ``Range`` (answers 200) restarts the file
  from zero; a ``416`` (range not satisfiable) means the part is already complete, or else it is
  discarded and fetched again;
* **verified before extraction** -- size and checksum (sha256, or md5 where that is what is
  documented) are checked once the transfer is complete. A mismatch deletes the file and raises
  :class:`DownloadError` naming the file, the expected and the actual value;
* **nothing half-extracted** -- a zip is extracted into a temporary directory next to its
  destination, checked to contain the expected paths, and only then renamed into place. A corrupt
  zip raises :class:`DownloadError`, the temporary directory is removed and the archive deleted;
* a **dropped connection** raises :class:`DownloadError` saying that the partial file was kept and
  that re-running the same command resumes it;
* progress bars (tqdm) show bytes, with unit scaling and the transfer rate.

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
* LVIS v0.5: nothing is documented anywhere we could find, so nothing is recorded.

Where no checksum is recorded, the first complete download is **trusted on first use**: its sha256
(with its md5 and size) is written to ``<root>/.acsl-checksums.json``, and every later download of
the same file under that root is verified against that record. Every successful download is
recorded there, so the sha256 of archives with only a documented md5 is pinned too. To accept a
legitimately changed upstream file, delete its entry from that JSON file.

Layout after extraction (what the loaders expect)::

    <root>/lvis_v0.5/annotations/lvis_v0.5_{train,val}.json
    <root>/lvis_v1/annotations/lvis_v1_{train,val}.json
    <root>/coco/train2017/*.jpg
    <root>/coco/val2017/*.jpg
    <root>/openimages/annotations/challenge-2019-*.{csv,json}   (plain files, moved into place once verified)

LVIS v0.5 ``file_name`` and LVIS v1 ``coco_url`` both resolve into the two COCO image directories,
so the LVIS datasets need ``coco2017`` as well for training (their own archives hold annotations
only). Only the standard library (``urllib.request``) and tqdm are used.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import http.client
import json
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm.auto import tqdm

__all__ = [
    "Archive",
    "DatasetSpec",
    "DATASETS",
    "CHECKSUM_RECORD",
    "DOWNLOAD_DIR",
    "DownloadError",
    "DataMissingError",
    "download_dataset",
    "missing_data",
    "require_data",
    "fetch_command",
]

#: Name of the trust-on-first-use checksum record, written directly under the data root.
CHECKSUM_RECORD = ".acsl-checksums.json"
#: Folder (under the data root) that holds ``.part`` files and archives being verified.
DOWNLOAD_DIR = ".downloads"

_CHUNK = 1 << 20  # bytes per read / hash update
_USER_AGENT = "acsl-data-download/0.1 (+https://www.lvisdataset.org)"


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


#: The registry behind ``acsl data download NAME`` (issue 4; ``openimages``: issue 6).
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


# ----------------------------------------------------------------------------------------------
# public API


def fetch_command(name: str, root: str | os.PathLike[str]) -> str:
    """The exact command line that downloads dataset ``name`` into ``root``."""
    return f"acsl data download {name} --root {root}"


def _spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise ValueError(f"unknown dataset {name!r}; known: {known}") from None


def missing_data(name: str, root: str | os.PathLike[str]) -> list[Path]:
    """Expected paths of dataset ``name`` under ``root`` that do not exist (empty: all present)."""
    root = Path(root)
    return [root / p for p in _spec(name).expected_paths if not (root / p).exists()]


def require_data(name: str, root: str | os.PathLike[str]) -> list[Path]:
    """Return the expected paths of ``name``, or raise :class:`DataMissingError` listing what is
    missing and the exact command that fetches it (issue 4: "a clear message listing what is
    missing when a later command needs data that is not there")."""
    missing = missing_data(name, root)
    if missing:
        lines = "\n".join(f"  - {p}" for p in missing)
        raise DataMissingError(
            f"dataset {name!r} is not complete under {root}; missing:\n{lines}\n"
            f"fetch it with:\n  {fetch_command(name, root)}"
        )
    return [Path(root) / p for p in _spec(name).expected_paths]


def download_dataset(
    name: str,
    root: str | os.PathLike[str],
    *,
    base_url: str | None = None,
    progress: bool = True,
    timeout: float = 60,
    keep_archives: bool = False,
) -> list[Path]:
    """Download, verify and extract dataset ``name`` under ``root``; return its expected paths.

    ``base_url`` replaces everything before the file name in every archive URL (a mirror, or the
    local test server). ``timeout`` is the socket timeout in seconds for connecting and for each
    read. Archives are deleted after a successful extraction unless ``keep_archives``. See the
    module docstring for the guarantees (idempotent, resumable, verified, atomic extraction) and
    for where the recorded checksums come from; where none is documented the first download's
    sha256 is recorded in ``<root>/.acsl-checksums.json`` and enforced afterwards.

    Raises :class:`DownloadError` on any network, verification or extraction failure.
    """
    spec = _spec(name)
    root = Path(root)
    records = _load_records(root)
    todo = [a for a in spec.archives if not _archive_satisfied(root, a, records)]
    expected = [root / p for p in spec.expected_paths]
    if not todo:
        _say(progress, f"{name}: already complete under {root} (nothing to download)")
        return expected
    root.mkdir(parents=True, exist_ok=True)
    for archive in todo:
        _say(progress, f"{name}: fetching {archive.filename}")
        url = _resolve_url(archive, base_url)
        path, (sha256, md5, size) = _download_archive(
            root, archive, url, records, progress=progress, timeout=timeout
        )
        if archive.filename.endswith(".zip"):
            _extract_zip(root, archive, path, progress=progress)
            _record(root, archive, url, sha256=sha256, md5=md5, size=size)  # only after extraction
            if not keep_archives:
                path.unlink(missing_ok=True)
        else:  # a plain file (Open Images' CSV and JSON): verified, then moved into place in one rename
            (root / archive.extract_to).mkdir(parents=True, exist_ok=True)
            os.replace(path, root / archive.extract_to / archive.filename)
            _record(root, archive, url, sha256=sha256, md5=md5, size=size)
    _cleanup_download_dir(root)
    still = missing_data(name, root)
    if still:  # only reachable if the spec's expected paths and archive contents disagree
        raise DownloadError(f"{name}: extraction finished but these are missing: {still}")
    _say(progress, f"{name}: ready under {root}")
    return expected


# ----------------------------------------------------------------------------------------------
# checksum records (trust on first use)


def _load_records(root: Path) -> dict[str, dict[str, Any]]:
    path = root / CHECKSUM_RECORD
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DownloadError(f"cannot read the checksum record {path}: {exc}") from exc
    archives = data.get("archives", {}) if isinstance(data, dict) else {}
    return archives if isinstance(archives, dict) else {}


def _record(root: Path, archive: Archive, url: str, *, sha256: str, md5: str, size: int) -> None:
    """Write (atomically) the verified digests of ``archive`` into ``<root>/.acsl-checksums.json``."""
    records = _load_records(root)
    if archive.filename in records and records[archive.filename].get("sha256") == sha256:
        return
    published = archive.sha256 or archive.md5
    records[archive.filename] = {
        "sha256": sha256,
        "md5": md5,
        "size_bytes": size,
        "url": url,
        "recorded_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "basis": "matched the documented checksum" if published else "trust on first use",
    }
    payload = {
        "note": (
            "sha256 of archives downloaded by `acsl data download`; archives with no documented "
            "checksum are trusted on first use and later downloads must match. Delete an entry "
            "to accept a changed upstream file."
        ),
        "archives": dict(sorted(records.items())),
    }
    path = root / CHECKSUM_RECORD
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


def _archive_satisfied(root: Path, archive: Archive, records: dict[str, dict[str, Any]]) -> bool:
    """All expected paths exist, and a checksum record (if any) agrees with the documented one."""
    if not all((root / p).exists() for p in archive.expected_paths):
        return False
    rec = records.get(archive.filename)
    if rec is None:
        return True
    if archive.sha256 and rec.get("sha256") and rec["sha256"] != archive.sha256:
        return False
    if archive.md5 and rec.get("md5") and rec["md5"] != archive.md5:
        return False
    return True


# ----------------------------------------------------------------------------------------------
# transfer


def _resolve_url(archive: Archive, base_url: str | None) -> str:
    if base_url is None:
        return archive.url
    return f"{base_url.rstrip('/')}/{archive.filename}"


def _download_archive(
    root: Path,
    archive: Archive,
    url: str,
    records: dict[str, dict[str, Any]],
    *,
    progress: bool,
    timeout: float,
) -> tuple[Path, tuple[str, str, int]]:
    """Fetch ``archive`` into ``<root>/.downloads/`` (resuming a ``.part``) and verify it.

    Returns the archive's path and its (sha256, md5, size).
    """
    ddir = root / DOWNLOAD_DIR
    ddir.mkdir(parents=True, exist_ok=True)
    dest = ddir / archive.filename
    rec = records.get(archive.filename, {})
    expected_size = archive.size_bytes if archive.size_bytes is not None else rec.get("size_bytes")
    if not dest.exists():
        _transfer(url, dest, expected_size=expected_size, progress=progress, timeout=timeout)
    return dest, _verify(dest, archive, rec, expected_size, progress=progress)


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _transfer(url: str, dest: Path, *, expected_size: int | None, progress: bool, timeout: float) -> None:
    """Download ``url`` to ``dest`` via ``dest.part``, resuming with a Range request when possible."""
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    if expected_size is not None and offset > expected_size:
        part.unlink()  # longer than the file can be: start over
        offset = 0
    kept = f"the partial file {part} was kept; re-run the same command to resume"
    for _attempt in range(2):  # the second pass only after a 416 that did not mean "complete"
        try:
            resp = _open(url, offset, timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset:
                total = _content_range_total(exc.headers.get("Content-Range"))
                if total == offset or (total is None and expected_size == offset):
                    os.replace(part, dest)  # the part was already complete
                    return
                part.unlink()
                offset = 0
                continue
            raise DownloadError(f"HTTP {exc.code} {exc.reason} while fetching {url}") from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            where = kept if offset else "nothing was written"
            raise DownloadError(f"could not connect to fetch {url}: {exc}; {where}") from exc
        with resp:
            status = resp.status
            length = _int_or_none(resp.headers.get("Content-Length"))
            if offset and status == 206:
                start = _content_range_start(resp.headers.get("Content-Range"))
                if start != offset:
                    raise DownloadError(
                        f"{url}: server answered a resume request from byte {offset} with range "
                        f"{resp.headers.get('Content-Range')!r}; delete {part} and re-run"
                    )
                mode = "ab"
            else:  # 200: a fresh download, or a server that ignored Range -> restart from zero
                offset = 0
                mode = "wb"
            total = offset + length if length is not None else expected_size
            received = 0
            bar = tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=dest.name,
                disable=not progress,
                miniters=1,
            )
            try:
                with open(part, mode) as fh, bar:
                    while True:
                        try:
                            chunk = resp.read(_CHUNK)
                        except (http.client.IncompleteRead, OSError, http.client.HTTPException) as exc:
                            raise DownloadError(
                                f"connection dropped while fetching {url} after "
                                f"{offset + received} of {_fmt(total)} bytes ({exc.__class__.__name__}); "
                                f"{kept}"
                            ) from exc
                        if not chunk:
                            break
                        fh.write(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
            except OSError as exc:  # a local write failure (disk full, ...)
                raise DownloadError(f"cannot write {part}: {exc}; {kept}") from exc
            if length is not None and received < length:
                raise DownloadError(
                    f"connection dropped while fetching {url} after {offset + received} of "
                    f"{_fmt(total)} bytes; {kept}"
                )
        os.replace(part, dest)
        return
    raise DownloadError(f"{url}: the server refused every byte range; delete {part} and re-run")


def _verify(
    path: Path, archive: Archive, rec: dict[str, Any], expected_size: int | None, *, progress: bool
) -> tuple[str, str, int]:
    """Check size, then sha256 (documented, else recorded) and md5 (documented); delete on mismatch.

    Returns the file's (sha256, md5, size).
    """
    actual_size = path.stat().st_size
    if expected_size is not None and actual_size != expected_size:
        path.unlink()
        raise DownloadError(
            f"size mismatch for {archive.filename}: expected {expected_size} bytes, got "
            f"{actual_size}; the file was deleted, re-run to download it again"
        )
    sha256, md5 = _digests(path, progress=progress)
    want_sha = archive.sha256 or rec.get("sha256")
    for kind, want, got in (("sha256", want_sha, sha256), ("md5", archive.md5, md5)):
        if want and want.lower() != got:
            path.unlink()
            basis = (
                "the documented checksum"
                if (kind == "sha256" and archive.sha256) or (kind == "md5" and archive.md5)
                else f"the checksum recorded on first download in {path.parent.parent / CHECKSUM_RECORD}"
            )
            raise DownloadError(
                f"checksum mismatch for {archive.filename}: expected {kind} {want} ({basis}), "
                f"got {got}; the file was deleted and nothing was extracted"
            )
    return sha256, md5, actual_size


def _digests(path: Path, *, progress: bool) -> tuple[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh, tqdm(
        total=path.stat().st_size,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=f"verify {path.name}",
        disable=not progress,
    ) as bar:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            sha.update(chunk)
            md5.update(chunk)
            bar.update(len(chunk))
    return sha.hexdigest(), md5.hexdigest()


# ----------------------------------------------------------------------------------------------
# extraction


def _extract_zip(root: Path, archive: Archive, path: Path, *, progress: bool) -> None:
    """Extract into a temporary directory inside ``extract_to``, then rename entries into place."""
    dest = root / archive.extract_to
    dest.mkdir(parents=True, exist_ok=True)
    prefix = f".{archive.filename}.extract-"
    for stale in dest.glob(prefix + "*"):  # left by a killed earlier run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=dest))
    try:
        try:
            with zipfile.ZipFile(path) as zf:
                members = zf.infolist()
                for info in members:
                    _check_member(info.filename, archive.filename)
                desc = f"extract {archive.filename}"
                with tqdm(total=len(members), unit="file", desc=desc, disable=not progress) as bar:
                    for info in members:
                        zf.extract(info, tmp)
                        bar.update(1)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
            path.unlink(missing_ok=True)  # a corrupt archive: fetch it again next time
            raise DownloadError(
                f"cannot extract {archive.filename}: {exc}; the archive was deleted and nothing was "
                f"extracted, re-run to download it again"
            ) from exc
        except OSError as exc:  # local trouble (disk full, permissions): keep the verified archive
            raise DownloadError(
                f"cannot extract {archive.filename} into {dest}: {exc}; nothing was extracted, the "
                f"archive was kept at {path} and a re-run extracts it again"
            ) from exc
        base = PurePosixPath(archive.extract_to)
        rels = [PurePosixPath(p).relative_to(base) for p in archive.expected_paths]
        absent = [str(r) for r in rels if not (tmp / r).exists()]
        if absent:
            path.unlink(missing_ok=True)
            raise DownloadError(
                f"{archive.filename} does not contain {absent}; the archive was deleted and nothing "
                f"was extracted"
            )
        for entry in sorted(tmp.iterdir()):
            target = dest / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(entry, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_member(name: str, archive_name: str) -> None:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or re.match(r"^[A-Za-z]:", name):
        raise DownloadError(f"{archive_name} contains an unsafe path {name!r}; refusing to extract it")


# ----------------------------------------------------------------------------------------------
# helpers


def _cleanup_download_dir(root: Path) -> None:
    ddir = root / DOWNLOAD_DIR
    try:
        ddir.rmdir()  # only when empty
    except OSError:
        pass


def _content_range_total(value: str | None) -> int | None:
    m = re.match(r"^\s*bytes\s+(?:\*|\d+-\d+)/(\d+)\s*$", value or "")
    return int(m.group(1)) if m else None


def _content_range_start(value: str | None) -> int | None:
    m = re.match(r"^\s*bytes\s+(\d+)-\d+/(?:\d+|\*)\s*$", value or "")
    return int(m.group(1)) if m else None


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _fmt(n: int | None) -> str:
    return "an unknown number of" if n is None else str(n)


def _say(enabled: bool, message: str) -> None:
    if enabled:
        print(message, file=sys.stderr)
