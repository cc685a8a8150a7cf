"""Verification of downloaded archives: size and checksums, and the trust-on-first-use record.

Size and checksum (sha256, or md5 where that is what is documented) are checked once a transfer is
complete; a mismatch deletes the file and raises :class:`DownloadError` naming the file, the expected
and the actual value. Where no checksum is documented (see :mod:`acsl.data.download.catalogue`), the
first complete download is **trusted on first use**: its sha256 (with its md5 and size) is written to
``<root>/.acsl-checksums.json``, and every later download of the same file under that root is verified
against that record. Every successful download is recorded there, so the sha256 of archives with only
a documented md5 is pinned too. To accept a legitimately changed upstream file, delete its entry from
that JSON file.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from tqdm import tqdm  # plain bars: tqdm.auto warns in kernels without ipywidgets

from .catalogue import CHECKSUM_RECORD, Archive, DownloadError

__all__ = ["CHUNK_BYTES", "archive_satisfied", "file_digests", "load_records", "record_checksums", "verify_file"]

CHUNK_BYTES = 1 << 20  # bytes per read / hash update


def load_records(root: Path) -> dict[str, dict[str, Any]]:
    """The archives recorded in ``<root>/.acsl-checksums.json`` (filename -> record); ``{}`` if none."""
    path = root / CHECKSUM_RECORD
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DownloadError(f"cannot read the checksum record {path}: {exc}") from exc
    archives = data.get("archives", {}) if isinstance(data, dict) else {}
    return archives if isinstance(archives, dict) else {}


def record_checksums(root: Path, archive: Archive, url: str, *, sha256: str, md5: str, size: int) -> None:
    """Write (atomically) the verified digests of ``archive`` into ``<root>/.acsl-checksums.json``."""
    records = load_records(root)
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


def archive_satisfied(root: Path, archive: Archive, records: dict[str, dict[str, Any]]) -> bool:
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


def verify_file(
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
    sha256, md5 = file_digests(path, progress=progress)
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


def file_digests(path: Path, *, progress: bool) -> tuple[str, str]:
    """(sha256, md5) hex digests of ``path``, read once, with a progress bar when ``progress``."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh, tqdm(
        total=path.stat().st_size,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=f"verify {path.name}",
        disable=not progress,
    ) as bar:
        for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
            sha.update(chunk)
            md5.update(chunk)
            bar.update(len(chunk))
    return sha.hexdigest(), md5.hexdigest()
