"""The identity of a data file: its size and SHA-256, computed once and cached beside the file.

A run on real data is keyed by the files it read (docs/ARCHITECTURE.md, "How a run flows"), so the digest
of a large annotation file (LVIS v0.5 train: about 1 GB) is needed at every ``acsl train``/``eval``.
It is cached in ``<file>.sha256`` (JSON: size, mtime and ctime in ns, inode, digest), written atomically and
trusted while the file keeps all four: an edit in place that keeps the size and restores the modification time
still moves the change time (which no user call sets), and a replaced file has another inode. Where the folder
is read-only the cache lives in memory for the process instead.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..io import atomic_write_json

DIGEST_SUFFIX = ".sha256"
_CHUNK = 1 << 22
#: (resolved path, stat key) → digest, for files whose folder cannot take a cache file.
_MEMORY: dict[tuple[str, tuple[int, int, int, int]], str] = {}
_KEY_FIELDS = ("size", "mtime_ns", "ctime_ns", "inode")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + DIGEST_SUFFIX)


def _stat_key(stat: os.stat_result) -> tuple[int, int, int, int]:
    """What the cached digest is trusted on: size, modification and change time (ns), inode."""
    return stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino


def _cached(path: Path, key: tuple[int, int, int, int]) -> str | None:
    memory = _MEMORY.get((str(path.resolve()), key))
    if memory is not None:
        return memory
    try:
        record = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return None
    if isinstance(record, dict) and tuple(record.get(name) for name in _KEY_FIELDS) == key:
        digest = record.get("sha256")
        return digest if isinstance(digest, str) and len(digest) == 64 else None
    return None


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of ``path`` (hex), from its cache while size, modification and change time and inode are unchanged."""
    path = Path(path)
    key = _stat_key(os.stat(path))
    digest = _cached(path, key)
    if digest is not None:
        return digest
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            hasher.update(chunk)
    digest = hasher.hexdigest()
    try:
        atomic_write_json(_sidecar(path), {**dict(zip(_KEY_FIELDS, key)), "sha256": digest})
    except OSError:  # a read-only data folder: remember it for this process
        _MEMORY[(str(path.resolve()), key)] = digest
    return digest


def file_identity(path: str | Path, root: str | Path) -> dict[str, object]:
    """``{"path": path relative to root, "size": bytes, "sha256": digest}``: what a run records of a file
    it read; relative, so moving the whole data root keeps it."""
    path = Path(path)
    return {"path": relative_to_root(path, root), "size": os.stat(path).st_size, "sha256": file_sha256(path)}


def relative_to_root(path: str | Path, root: str | Path) -> str:
    """``path`` relative to ``root`` (POSIX form), or its absolute form when it lies outside."""
    path, root = Path(path).absolute(), Path(root).absolute()
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()
