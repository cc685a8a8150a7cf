"""Extraction of a verified zip archive, all or nothing.

A zip is extracted into a temporary directory next to its destination, checked to contain the
expected paths, and only then renamed into place. Unsafe member paths are refused; a corrupt zip
raises :class:`DownloadError`, the temporary directory is removed and the archive deleted.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm  # plain bars: tqdm.auto warns in kernels without ipywidgets

from .catalogue import Archive, DownloadError

__all__ = ["extract_zip"]


def extract_zip(root: Path, archive: Archive, path: Path, *, progress: bool) -> None:
    """Extract into a temporary directory inside ``extract_to``, then rename entries into place."""
    dest = root / archive.extract_to
    dest.mkdir(parents=True, exist_ok=True)
    prefix = f".{archive.filename}.extract-"
    for stale in dest.glob(prefix + "*"):  # left by a killed earlier run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=dest))
    try:
        _unzip(archive, path, tmp, dest, progress=progress)
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


def _unzip(archive: Archive, path: Path, tmp: Path, dest: Path, *, progress: bool) -> None:
    """Extract every member of the zip at ``path`` into ``tmp`` after checking all their names.

    A corrupt archive is deleted (a re-run fetches it again); a local failure keeps it.
    """
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


def _check_member(name: str, archive_name: str) -> None:
    """Refuse a member path that is absolute, climbs out with ``..`` or names a drive."""
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or re.match(r"^[A-Za-z]:", name):
        raise DownloadError(f"{archive_name} contains an unsafe path {name!r}; refusing to extract it")
