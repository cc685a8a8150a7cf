"""The identity of a data file: its size and SHA-256, computed once and cached beside the file.

A run on real data is keyed by the files it read (docs/ARCHITECTURE.md, "How a run flows"), so the digest
of a large annotation file (LVIS v0.5 train: about 1 GB) is needed at every ``acsl train``/``eval``.
It is cached in ``<file>.sha256`` (JSON: size, mtime in ns, digest), written atomically and trusted while
the file keeps its size and modification time; where the folder is read-only the cache lives in memory
for the process instead.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..io import atomic_write_json

DIGEST_SUFFIX = ".sha256"
_CHUNK = 1 << 22
#: (resolved path, size, mtime_ns) → digest, for files whose folder cannot take a cache file.
_MEMORY: dict[tuple[str, int, int], str] = {}


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + DIGEST_SUFFIX)


def _cached(path: Path, size: int, mtime_ns: int) -> str | None:
    memory = _MEMORY.get((str(path.resolve()), size, mtime_ns))
    if memory is not None:
        return memory
    try:
        record = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return None
    if isinstance(record, dict) and record.get("size") == size and record.get("mtime_ns") == mtime_ns:
        digest = record.get("sha256")
        return digest if isinstance(digest, str) and len(digest) == 64 else None
    return None


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of ``path`` (hex), from its cache while size and modification time are unchanged."""
    path = Path(path)
    stat = os.stat(path)
    digest = _cached(path, stat.st_size, stat.st_mtime_ns)
    if digest is not None:
        return digest
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            hasher.update(chunk)
    digest = hasher.hexdigest()
    try:
        atomic_write_json(_sidecar(path), {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest})
    except OSError:  # a read-only data folder: remember it for this process
        _MEMORY[(str(path.resolve()), stat.st_size, stat.st_mtime_ns)] = digest
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
