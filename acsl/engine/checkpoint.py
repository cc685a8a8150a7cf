"""Atomic checkpoints: write to a temporary file in the same directory, then rename, so an interrupted
write never leaves a half-written checkpoint behind (the previous one stays valid)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..io import atomic_output


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` through a temporary sibling file and ``os.replace``."""
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by the engine; a clear error names a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # corrupted or foreign file
        raise RuntimeError(f"cannot read checkpoint {path}: {error}") from error
