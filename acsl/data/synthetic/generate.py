"""Writing the synthetic benchmark to disk: deterministic, atomic and idempotent.

``generate_benchmark`` designs the categories, draws the train and val splits and writes the LVIS
files, all into a temporary sibling directory that is renamed into place; ``config.json`` is written
last and marks a complete dataset. An existing root with an equal config is returned untouched; a
different config raises (docs/ARCHITECTURE.md, "The synthetic benchmark").
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from acsl.config import SyntheticConfig
from acsl.io import remove_stale_temporaries

from .categories import design_categories
from .splits import category_records, generate_split

__all__ = ["CONTENT_VERSION", "SyntheticBenchmark", "SyntheticDatasetExistsError", "generate_benchmark"]

#: Bumped whenever the generated content for a given config changes.
CONTENT_VERSION = "acsl-synthetic-2"
#: ``info.description`` of the generated files. Part of the generated content: changing it changes
#: every file (and would need a new CONTENT_VERSION), so it keeps its original wording.
_DESCRIPTION = "acsl synthetic long-tail benchmark (DESIGN §7)"


@dataclass(frozen=True)
class SyntheticBenchmark:
    """Paths of a generated benchmark (image ``file_name``s are relative to the image folders)."""

    root: Path
    train_json: Path
    val_json: Path
    train_images: Path
    val_images: Path

    @classmethod
    def at(cls, root: str | Path) -> "SyntheticBenchmark":
        """The paths of the benchmark whose root is ``root`` (whether or not it exists)."""
        root = Path(root)
        return cls(
            root=root,
            train_json=root / "annotations" / "train.json",
            val_json=root / "annotations" / "val.json",
            train_images=root / "images" / "train",
            val_images=root / "images" / "val",
        )


class SyntheticDatasetExistsError(FileExistsError):
    """``root`` already holds something other than the requested benchmark."""


def _config_record(config: SyntheticConfig) -> dict[str, Any]:
    """The content of ``config.json``: generator, content version and config."""
    return {
        "generator": "acsl.data.synthetic",
        "content_version": CONTENT_VERSION,
        "config": config.record(),
    }


def _write_json(path: Path, obj: Any) -> None:
    """Compact JSON with a trailing newline (the byte layout of every generated JSON file)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, separators=(",", ":"), sort_keys=False)
        f.write("\n")


def _existing(root: Path, config: SyntheticConfig) -> SyntheticBenchmark | None:
    """The benchmark at ``root`` if complete and equal to ``config``; None if root is absent/empty."""
    if not root.exists():
        return None
    if not root.is_dir():
        raise SyntheticDatasetExistsError(f"{root} exists and is not a directory; choose another root")
    cfg_path = root / "config.json"
    if not cfg_path.is_file():
        if any(root.iterdir()):
            raise SyntheticDatasetExistsError(
                f"{root} is not empty and holds no synthetic benchmark (no config.json); "
                "choose another root or delete it"
            )
        return None
    try:
        found = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SyntheticDatasetExistsError(
            f"{cfg_path} is unreadable ({e}); choose another root or delete {root}"
        ) from e
    wanted = _config_record(config)
    if found != wanted:
        raise SyntheticDatasetExistsError(
            f"{root} already holds a synthetic benchmark generated with a different config "
            f"({found.get('content_version')}, {found.get('config')}) than requested "
            f"({wanted['content_version']}, {wanted['config']}); choose another root or delete {root}"
        )
    bench = SyntheticBenchmark.at(root)
    missing = [p for p in (bench.train_json, bench.val_json, bench.train_images, bench.val_images)
               if not p.exists()]
    if missing:
        raise SyntheticDatasetExistsError(
            f"{root} holds config.json but is incomplete (missing {missing[0]}); delete {root} "
            "and generate again"
        )
    return bench


def _write_benchmark(bench: SyntheticBenchmark, config: SyntheticConfig, progress: bool) -> None:
    """Generate every file of ``config``'s benchmark at ``bench`` (``config.json`` last)."""
    for p in (bench.train_json.parent, bench.train_images, bench.val_images):
        p.mkdir(parents=True, exist_ok=True)
    ss_design, ss_train, ss_val = np.random.SeedSequence(config.seed).spawn(3)
    specs = design_categories(config, np.random.Generator(np.random.PCG64(ss_design)))

    pbar = None
    if progress:
        from tqdm import tqdm

        pbar = tqdm(total=config.num_train_images + config.num_val_images,
                    desc="synthetic benchmark", unit="img")
    try:
        train_images, train_anns = generate_split(
            "train", specs, config.num_train_images, 1, 1, config, bench.train_images,
            np.random.Generator(np.random.PCG64(ss_train)), pbar)
        val_images, val_anns = generate_split(
            "val", specs, config.num_val_images, config.num_train_images + 1,
            len(train_anns) + 1, config, bench.val_images,
            np.random.Generator(np.random.PCG64(ss_val)), pbar)
    finally:
        if pbar is not None:
            pbar.close()
    categories = category_records(specs, train_anns)
    info = {
        "description": _DESCRIPTION,
        "version": CONTENT_VERSION,
        "config": dataclasses.asdict(config),
    }
    for path, imgs, anns in ((bench.train_json, train_images, train_anns),
                             (bench.val_json, val_images, val_anns)):
        _write_json(path, {"info": info, "licenses": [], "images": imgs,
                           "annotations": anns, "categories": categories})
    _write_json(bench.root / "config.json", _config_record(config))  # written last: marks complete


def generate_benchmark(
    root: str | Path, config: SyntheticConfig = SyntheticConfig(), progress: bool = True
) -> SyntheticBenchmark:
    """Generate the synthetic long-tail benchmark of ``config`` under ``root``.

    Deterministic: the same config gives byte-identical JSON and PNG files (numpy PCG64 streams
    spawned from ``SeedSequence(config.seed)`` for design, train and val). Atomic: written into a
    temporary sibling directory and renamed into place. Idempotent: if ``root`` already holds a
    complete benchmark with an equal config it is returned without regenerating; a different
    config (or unrelated content) raises :class:`SyntheticDatasetExistsError`.
    """
    root = Path(root).absolute()
    if root.parent.is_dir():
        remove_stale_temporaries(root.parent, depth=1)  # what a killed generator left behind
    done = _existing(root, config)
    if done is not None:
        return done
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-pid{os.getpid()}-", dir=root.parent))
    try:
        _write_benchmark(SyntheticBenchmark.at(tmp), config, progress)
        if root.exists():
            root.rmdir()  # _existing() verified it is empty
        try:
            os.rename(tmp, root)
        except OSError:
            done = _existing(root, config)  # a concurrent generator finished first
            if done is None:
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return done
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SyntheticBenchmark.at(root)
