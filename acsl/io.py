"""Atomic file output: everything the project writes (checkpoints, metrics, tables, reports) goes to a
temporary sibling first and is renamed into place, so an interruption never leaves a half-written file.

A temporary name carries its writer's process id (``.<name>.pid<PID>-<random>.tmp``), so what a killed
process left behind is recognised and removed on the next start (``remove_stale_temporaries``). JSON is
written strictly (no bare NaN: an undefined number is ``null``), and a record that cannot be read back is
named and moved aside (``read_json_record``, ``move_aside``) so that it is recomputed rather than blocking.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.pid{os.getpid()}-", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; published files get the usual mode
    try:
        yield Path(tmp)
        with open(tmp, "rb") as handle:  # on disk before it takes the final name
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """``obj`` as strict JSON: a NaN or infinite float is written as ``null`` (undefined), never as the bare
    ``NaN`` that strict parsers reject."""
    atomic_write_text(path, json.dumps(finite_or_null(obj), indent=2, sort_keys=True, allow_nan=False) + "\n")


def finite_or_null(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float (in dicts, lists and tuples) replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: finite_or_null(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_null(value) for value in obj]
    return obj


class CorruptRecordError(ValueError):
    """A stored JSON record that cannot be read back; the message names the file and the cause."""


def read_json_record(path: str | Path) -> dict[str, Any]:
    """The JSON object stored at ``path``; a ``CorruptRecordError`` naming the file when it is truncated,
    not JSON or not an object (``FileNotFoundError`` when it is missing)."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise CorruptRecordError(f"{path} is not a readable JSON record ({error})") from error
    if not isinstance(record, dict):
        raise CorruptRecordError(f"{path} holds a JSON {type(record).__name__}, not a record (an object)")
    return record


def move_aside(path: str | Path) -> Path:
    """Rename ``path`` to ``<name>.corrupt-<time>`` beside it (kept for inspection, out of the way), and
    return the new path."""
    path = Path(path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    number = 1
    while target.exists():
        number += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{number}")
    os.replace(path, target)
    return target


#: A temporary file or folder without its writer's process id counts as left behind after this long.
STALE_AFTER_S = 3600.0
_TEMPORARY = re.compile(r"^\..+(\.tmp|\.tmp-[^/]*)$")
_OWNER = re.compile(r"\.pid(\d+)-|\.tmp-pid(\d+)-")


def remove_stale_temporaries(folder: str | Path, depth: int = 2) -> list[Path]:
    """Remove the hidden temporaries (``.<name>...tmp`` files, ``.<name>.tmp-...`` folders) that a killed
    process left in ``folder`` and its subfolders down to ``depth`` levels: those whose writer (the process
    id in the name) no longer runs on this machine, or, without one, not modified for ``STALE_AFTER_S``. A
    temporary of a live process is left alone. Returns what was removed."""
    folder, removed = Path(folder), []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        path = Path(entry.path)
        if _TEMPORARY.match(entry.name) and _is_stale(path):
            shutil.rmtree(path, ignore_errors=True) if entry.is_dir(follow_symlinks=False) else path.unlink(missing_ok=True)
            removed.append(path)
        elif depth > 1 and entry.is_dir(follow_symlinks=False):
            removed += remove_stale_temporaries(path, depth - 1)
    return removed


def _is_stale(path: Path) -> bool:
    owner = _OWNER.search(path.name)
    if owner is not None:
        pid = int(owner.group(1) or owner.group(2))
        if pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # it runs, under another user
            return False
        return False
    try:
        return time.time() - path.lstat().st_mtime > STALE_AFTER_S
    except OSError:
        return False


def ensure_writable_dir(path: str | Path, what: str) -> Path:
    """Create ``path`` if needed and prove it is writable, or raise a ``PermissionError`` naming it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-probe-"):
            pass
    except OSError as error:
        raise PermissionError(f"{what} directory {path} is not writable: {error.strerror or error}") from error
    return path
