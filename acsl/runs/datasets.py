"""The datasets of a spec: the synthetic benchmark generated from its seed, or real LVIS or Open Images files
under the data root; the Open Images track's files beside the benchmark (docs/ARCHITECTURE.md, "How a run
flows"). A spec with ``subset`` N sees the first N images of train and of val, and is scored on those."""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config import LVISData, OpenImagesData, SyntheticConfig
from ..data import LVISDetection, generate_benchmark
from ..data.categories import require_same_categories
from ..data.coarse import CoarseLabels
from ..data.subset import FirstImages
from ..data.synthetic import CONTENT_VERSION, SyntheticBenchmark
from ..engine import distributed
from ..locks import exclusive
from ..profiles import get_profile
from .spec import ExperimentSpec

#: (train set, val set, val annotation file)
Datasets = tuple[LVISDetection, LVISDetection, Path]


def profile_benchmark(profile: str, data_root: str | Path = "data", seed: int = 0,
                      progress: bool = True) -> SyntheticBenchmark:
    """The synthetic benchmark of ``profile`` for ``seed`` under ``data_root``, generated if missing."""
    data = get_profile(profile).data
    if not isinstance(data, SyntheticConfig):
        raise ValueError(f"profile {profile!r} uses real data, not the synthetic benchmark")
    config = replace(data, seed=seed)
    with _generation_lock(data_root, profile, seed):
        return generate_benchmark(Path(data_root) / benchmark_folder(profile, seed), config, progress=progress)


def benchmark_folder(profile: str, seed: int) -> str:
    """The folder of ``profile``'s benchmark for ``seed`` under the data root; it names the content version,
    so a benchmark of another version (an older checkout's) stays where it is and is never read for this one."""
    return f"synthetic-{profile}-seed{seed}-v{CONTENT_VERSION.removeprefix('acsl-synthetic-')}"


def _generation_lock(data_root: str | Path, profile: str, seed: int):
    """One process of a parallel report generates a benchmark (and its Open-Images-style files), another
    waits and reads it (acsl.locks). torchrun's ranks take none: rank 0 goes first instead."""
    if distributed.is_distributed():
        return contextlib.nullcontext()
    name = benchmark_folder(profile, seed)
    return exclusive(Path(data_root) / ".locks" / f"{name}.lock", f"generating {name}")


def lvis_files(version: str, data_root: str | Path) -> tuple[tuple[Path, Path], tuple[Path, Path]]:
    """((train annotations, image root), (val annotations, image root)) of real LVIS under ``data_root``,
    or a ``DataMissingError`` listing what is missing and the command that fetches it."""
    from ..data.download import require_data

    root = Path(data_root)
    require_data(f"lvis-{version}", root)
    require_data("coco2017", root)
    folder = root / f"lvis_{version}" / "annotations"
    if version == "v0.5":  # file_name inside COCO's split folders
        return ((folder / "lvis_v0.5_train.json", root / "coco" / "train2017"),
                (folder / "lvis_v0.5_val.json", root / "coco" / "val2017"))
    return ((folder / "lvis_v1_train.json", root / "coco"), (folder / "lvis_v1_val.json", root / "coco"))


def _synthetic_files(spec: ExperimentSpec, data_root: Path, progress: bool) -> tuple[tuple[Path, Path], tuple[Path, Path]]:
    with _generation_lock(data_root, spec.profile, spec.data_seed):
        with distributed.main_process_first():  # rank 0 generates, the others then read
            bench = profile_benchmark(spec.profile, data_root, spec.data_seed, progress and distributed.is_main_process())
        train_json, val_json = bench.train_json, bench.val_json
        if spec.settings.track == "openimages":  # the Open-Images-style files beside the benchmark (rank 0 writes)
            from ..data.openimages_synthetic import write_openimages_style

            with distributed.main_process_first():
                train_json, val_json = write_openimages_style(bench, seed=spec.data_seed)
    return (train_json, bench.train_images), (val_json, bench.val_images)


def data_files(spec: ExperimentSpec, data_root: str | Path,
               progress: bool = True) -> tuple[tuple[Path, Path], tuple[Path, Path]]:
    """((train annotations, image root), (val annotations, image root)) of the spec's profile: real files
    found (Open Images converted once to the LVIS format) or the benchmark generated; a
    ``DataMissingError`` names real data that is missing."""
    data = spec.settings.data
    if isinstance(data, LVISData):
        return lvis_files(data.version, data_root)
    if isinstance(data, OpenImagesData):
        from ..data.openimages_lvis import openimages_lvis_files

        with distributed.main_process_first():  # rank 0 converts, the others then read
            return openimages_lvis_files(data_root)
    return _synthetic_files(spec, Path(data_root), progress)


def load_datasets(spec: ExperimentSpec, data_root: str | Path, progress: bool = True) -> Datasets:
    """(train, val, val annotation file) of the spec's profile, generating the benchmark if missing; the
    training set flips with the probability of the spec's stage; ``spec.subset``: the first N of each."""
    profile = spec.settings
    hflip = spec.train_config().hflip_prob
    (train_json, train_images), (val_json, val_images) = data_files(spec, data_root, progress)
    small = isinstance(spec.settings.data, SyntheticConfig)  # decoded once, kept in memory across epochs and runs
    train_set = LVISDetection(train_json, train_images, train=True, hflip_prob=hflip, seed=spec.seed, keep_decoded=small)
    val_set = LVISDetection(val_json, val_images, keep_decoded=small)
    require_same_categories(train_set, val_set)  # before anything trains: columns and predictions map by id
    for dataset in (train_set, val_set):  # every image a run reads is there before it trains (one stat each)
        dataset.require_images(spec.subset)
    if spec.subset is not None:
        train_set, val_set = FirstImages(train_set, spec.subset), FirstImages(val_set, spec.subset)
    if spec.stage == 0:  # the pretrained start: the same images, boxes labelled by shape
        train_set = CoarseLabels(train_set)
    return train_set, val_set, Path(val_json)


def evaluation_truth(val_set, val_json: Path) -> Path | dict[str, Any]:
    """The ground truth a run is scored on: the val file, or for a subset run its images alone (so a
    bounded run is never scored as if it had seen the whole val set)."""
    if not isinstance(val_set, FirstImages):
        return val_json
    truth = json.loads(Path(val_json).read_text())
    kept = set(val_set.image_ids)
    truth["images"] = [image for image in truth["images"] if image["id"] in kept]
    truth["annotations"] = [a for a in truth["annotations"] if a["image_id"] in kept]
    return truth
