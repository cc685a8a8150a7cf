"""Atomic checkpoints: write to a temporary file in the same directory, then rename, so an interrupted
write never leaves a half-written checkpoint behind (the previous one stays valid)."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Any

import torch

from ..io import atomic_output


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` through a temporary sibling file and ``os.replace``. A failed write (a full
    disk: torch's "enforce fail at inline_container.cc") raises an ``OSError`` that names ``path`` and the
    cause; the temporary file is removed and a previous checkpoint at ``path`` stays as it was."""
    path = Path(path)
    try:
        with atomic_output(path) as tmp:
            torch.save(obj, tmp)
    except (RuntimeError, OSError) as error:
        raise OSError(f"cannot save checkpoint {path}: {_write_failure(error, path.parent)}") from error


def _write_failure(error: BaseException, folder: Path) -> str:
    """Why a checkpoint write failed, in words: a full disk says so, with the space left."""
    try:
        free = f"{shutil.disk_usage(folder).free / 2**20:.1f} MiB free on {folder}"
    except OSError:
        free = f"{folder} cannot be inspected"
    if getattr(error, "errno", None) == errno.ENOSPC or "inline_container" in str(error) or "write failed" in str(error):
        return f"the write failed, most likely the disk is full ({free}); free some space and rerun ({error})"
    return f"{error} ({free})"


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by the engine; a clear error names a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # corrupted or foreign file
        raise RuntimeError(f"cannot read checkpoint {path}: {error}") from error
