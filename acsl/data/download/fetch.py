"""``download_dataset``: fetch, verify and extract (or move into place) every archive of a dataset.

What :func:`download_dataset` guarantees, per archive:

* **idempotent** -- when every expected path already exists (and the checksum record, if any, agrees
  with the published checksum) it returns at once, without touching the network;
* **resumable** -- bytes go to ``<root>/.downloads/<filename>.part``; a later run continues it with an
  HTTP ``Range: bytes=N-`` request. A server that ignores ``Range`` (answers 200) restarts the file
  from zero; a ``416`` (range not satisfiable) means the part is already complete, or else it is
  discarded and fetched again;
* **verified before extraction** (:mod:`acsl.data.download.verify`);
* **nothing half-extracted** (:mod:`acsl.data.download.extract`);
* a **dropped connection** raises :class:`DownloadError` saying that the partial file was kept and
  that re-running the same command resumes it;
* progress bars (tqdm) show bytes, with unit scaling and the transfer rate.

Only the standard library (``urllib.request``) and tqdm are used. There is no internet on the
machines this project is tested on (docs/ARCHITECTURE.md, "Environment facts"): this code is tested
against a local HTTP server on 127.0.0.1 serving small fake archives.
"""

from __future__ import annotations

import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tqdm import tqdm  # plain bars: tqdm.auto warns in kernels without ipywidgets

from .catalogue import DOWNLOAD_DIR, Archive, DownloadError, dataset_spec, missing_data
from .extract import extract_zip
from .verify import CHUNK_BYTES, archive_satisfied, load_records, record_checksums, verify_file

__all__ = ["download_dataset"]

_USER_AGENT = "acsl-data-download/0.1 (+https://www.lvisdataset.org)"


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
    :mod:`acsl.data.download.catalogue` for where the recorded checksums come from; where none is
    documented the first download's sha256 is recorded in ``<root>/.acsl-checksums.json`` and
    enforced afterwards.

    Raises :class:`DownloadError` on any network, verification or extraction failure.
    """
    spec = dataset_spec(name)
    root = Path(root)
    records = load_records(root)
    todo = [a for a in spec.archives if not archive_satisfied(root, a, records)]
    expected = [root / p for p in spec.expected_paths]
    if not todo:
        _say(progress, f"{name}: already complete under {root} (nothing to download)")
        return expected
    root.mkdir(parents=True, exist_ok=True)
    for archive in todo:
        _say(progress, f"{name}: fetching {archive.filename}")
        _install_archive(root, archive, records, base_url=base_url, progress=progress, timeout=timeout,
                         keep_archives=keep_archives)
    _cleanup_download_dir(root)
    still = missing_data(name, root)
    if still:  # only reachable if the spec's expected paths and archive contents disagree
        raise DownloadError(f"{name}: extraction finished but these are missing: {still}")
    _say(progress, f"{name}: ready under {root}")
    return expected


def _install_archive(
    root: Path,
    archive: Archive,
    records: dict[str, dict[str, Any]],
    *,
    base_url: str | None,
    progress: bool,
    timeout: float,
    keep_archives: bool,
) -> None:
    """Fetch and verify one archive, put its contents in place, then record its checksums."""
    url = _resolve_url(archive, base_url)
    path, (sha256, md5, size) = _download_archive(
        root, archive, url, records, progress=progress, timeout=timeout
    )
    if archive.filename.endswith(".zip"):
        extract_zip(root, archive, path, progress=progress)
        record_checksums(root, archive, url, sha256=sha256, md5=md5, size=size)  # only after extraction
        if not keep_archives:
            path.unlink(missing_ok=True)
    else:  # a plain file (Open Images' CSV and JSON): verified, then moved into place in one rename
        (root / archive.extract_to).mkdir(parents=True, exist_ok=True)
        os.replace(path, root / archive.extract_to / archive.filename)
        record_checksums(root, archive, url, sha256=sha256, md5=md5, size=size)


def _resolve_url(archive: Archive, base_url: str | None) -> str:
    """The archive's URL, or ``base_url/filename`` when a mirror is given."""
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
    return dest, verify_file(dest, archive, rec, expected_size, progress=progress)


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    """GET ``url`` (from byte ``offset`` with a Range header when resuming)."""
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
    kept = _kept(part)
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
            _receive(resp, url, part, dest.name, offset, expected_size=expected_size, progress=progress)
        os.replace(part, dest)
        return
    raise DownloadError(f"{url}: the server refused every byte range; delete {part} and re-run")


def _receive(
    resp: http.client.HTTPResponse, url: str, part: Path, desc: str, offset: int, *,
    expected_size: int | None, progress: bool,
) -> None:
    """Write the body of ``resp`` to ``part``: appended after ``offset`` bytes for a 206 answer to a
    resume request, from zero for a 200; a dropped connection keeps the part for a later resume."""
    kept = _kept(part)
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
        desc=desc,
        disable=not progress,
        miniters=1,
    )
    try:
        with open(part, mode) as fh, bar:
            while True:
                try:
                    chunk = resp.read(CHUNK_BYTES)
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


def _kept(part: Path) -> str:
    """The end of a message about a transfer that stopped with ``part`` on disk."""
    return f"the partial file {part} was kept; re-run the same command to resume"


def _cleanup_download_dir(root: Path) -> None:
    """Remove ``<root>/.downloads`` when it is empty."""
    ddir = root / DOWNLOAD_DIR
    try:
        ddir.rmdir()  # only when empty
    except OSError:
        pass


def _content_range_total(value: str | None) -> int | None:
    """The total size in a ``Content-Range: bytes a-b/TOTAL`` (or ``*/TOTAL``) header, if any."""
    m = re.match(r"^\s*bytes\s+(?:\*|\d+-\d+)/(\d+)\s*$", value or "")
    return int(m.group(1)) if m else None


def _content_range_start(value: str | None) -> int | None:
    """The first byte in a ``Content-Range: bytes START-b/total`` header, if any."""
    m = re.match(r"^\s*bytes\s+(\d+)-\d+/(?:\d+|\*)\s*$", value or "")
    return int(m.group(1)) if m else None


def _int_or_none(value: str | None) -> int | None:
    """``int(value)``, or ``None`` when absent or not an integer."""
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _fmt(n: int | None) -> str:
    """A byte count for a message (``"an unknown number of"`` when unknown)."""
    return "an unknown number of" if n is None else str(n)


def _say(enabled: bool, message: str) -> None:
    """Print a progress line to stderr when ``enabled``."""
    if enabled:
        print(message, file=sys.stderr)
