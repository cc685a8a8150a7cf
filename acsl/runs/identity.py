"""Which data a run saw, and when a stored run may stand for a spec (docs/ARCHITECTURE.md, "How a run flows").

A spec's hash covers the synthetic benchmark's config, but real data is whatever lies under the data
root. So the run store keys a real-data run by its spec hash *and* the identity of its data: each split's
annotation file (path relative to the data root, size, SHA-256; ``acsl.data.fingerprint`` caches the
digest beside the file) and its image folder (relative to the data root, so moving the whole data root
keeps every run). A run dir records that identity in ``data.json``; a stored run of the same spec whose
data differs, or one stored before runs recorded their data, is never returned: the store prints a note
naming it and trains anew. Synthetic runs keep the spec hash alone as their key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config import SyntheticConfig
from ..data.fingerprint import file_identity, relative_to_root
from ..io import atomic_write_json
from .datasets import data_files
from .spec import ExperimentSpec

DATA_RECORD = "data.json"


def data_identity(spec: ExperimentSpec, data_root: str | Path, progress: bool = False) -> dict[str, Any] | None:
    """The identity of the spec's real data under ``data_root`` (module docstring), or None for the
    synthetic benchmark, whose config is already in the spec hash. Raises ``DataMissingError`` (naming
    the files and the command that fetches them) when the data is not there."""
    if isinstance(spec.settings.data, SyntheticConfig):
        return None
    root = Path(data_root)
    (train_json, train_images), (val_json, val_images) = data_files(spec, root, progress)
    return {split: {"annotations": file_identity(ann, root), "images": relative_to_root(images, root)}
            for split, (ann, images) in (("train", (train_json, train_images)), ("val", (val_json, val_images)))}


def run_key(spec: ExperimentSpec, identity: dict[str, Any] | None) -> str:
    """The key of a run dir: the spec hash, combined with the data identity for real data."""
    if identity is None:
        return spec.hash
    canonical = json.dumps({"spec": spec.hash, "data": identity}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def record_data(run_dir: Path, spec: ExperimentSpec, identity: dict[str, Any] | None) -> None:
    """Write ``data.json`` (the spec hash and the data identity) into a real-data run dir, once."""
    if identity is not None and not (run_dir / DATA_RECORD).is_file():
        atomic_write_json(run_dir / DATA_RECORD, {"spec_hash": spec.hash, "data": identity})


def _difference(theirs: dict[str, Any], ours: dict[str, Any]) -> str:
    for split in ("train", "val"):
        a, b = theirs.get(split, {}), ours[split]
        if a.get("annotations") != b["annotations"]:
            old, new = a.get("annotations", {}), b["annotations"]
            return (f"its {split} annotations were {old.get('path')} ({old.get('size')} bytes, sha256 "
                    f"{str(old.get('sha256'))[:12]}…), here they are {new['path']} ({new['size']} bytes, sha256 "
                    f"{new['sha256'][:12]}…)")
        if a.get("images") != b["images"]:
            return f"its {split} images were {a.get('images')}, here they are {b['images']}"
    return "its data record differs"


def stale_run_notes(root: Path, spec: ExperimentSpec, key: str, identity: dict[str, Any] | None) -> list[str]:
    """Notes on stored runs of this spec that are not used: trained on other data, or stored before
    runs recorded their data (so nothing says which data they saw)."""
    if identity is None or not root.is_dir():
        return []
    notes = []
    for other in sorted(root.glob(f"{spec.name}-*")):
        if other.name == f"{spec.name}-{key}" or not other.is_dir():
            continue
        try:
            record = json.loads((other / DATA_RECORD).read_text())
        except (OSError, ValueError):
            record = None
        if record is None and other.name == f"{spec.name}-{spec.hash}":
            notes.append(f"note: ignoring {other}: stored before runs recorded their data, so nothing says which "
                         "data it saw; it is not used (delete it once you no longer need it)")
        elif record is not None and record.get("spec_hash") == spec.hash:
            notes.append(f"note: ignoring {other}: trained on other data ({_difference(record.get('data', {}), identity)}); "
                         "it is not used (delete it once you no longer need it)")
    return notes


def bounded(spec: ExperimentSpec, max_iters: int | None) -> ExperimentSpec:
    """``spec`` stopped after ``max_iters`` iterations, unless it is bounded already (or max_iters is None)."""
    if max_iters is None or spec.max_iters is not None:
        return spec
    return replace(spec, max_iters=max_iters)


def checkpoint_finished(state: dict[str, Any], spec: ExperimentSpec) -> bool:
    """Whether a checkpoint holds the whole training of ``spec``: every epoch, or ``spec.max_iters``."""
    if spec.max_iters is not None and int(state.get("iteration", 0)) >= spec.max_iters:
        return True
    return int(state["epoch"]) >= spec.train_config().epochs
