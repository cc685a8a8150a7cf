"""The datasets of a spec: the synthetic benchmark generated from its seed, or real LVIS files under the
data root; the Open Images track's files beside the benchmark (docs/ARCHITECTURE.md, "How a run flows")."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..config import LVISData, SyntheticConfig
from ..data import LVISDetection, generate_benchmark
from ..data.synthetic import SyntheticBenchmark
from ..engine import distributed
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
    return generate_benchmark(Path(data_root) / f"synthetic-{profile}-seed{seed}", config, progress=progress)


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
    with distributed.main_process_first():  # rank 0 generates, the others then read
        bench = profile_benchmark(spec.profile, data_root, spec.seed, progress and distributed.is_main_process())
    train_json, val_json = bench.train_json, bench.val_json
    if spec.settings.track == "openimages":  # the Open-Images-style files beside the benchmark (rank 0 writes)
        from ..data.openimages_synthetic import write_openimages_style

        with distributed.main_process_first():
            train_json, val_json = write_openimages_style(bench, seed=spec.seed)
    return (train_json, bench.train_images), (val_json, bench.val_images)


def load_datasets(spec: ExperimentSpec, data_root: str | Path, progress: bool = True) -> Datasets:
    """(train, val, val annotation file) of the spec's profile, generating the benchmark if missing; the
    training set flips with the probability of the spec's stage."""
    profile = spec.settings
    hflip = profile.stage2.hflip_prob if spec.stage == 2 else profile.stage1.hflip_prob
    if isinstance(profile.data, LVISData):
        (train_json, train_images), (val_json, val_images) = lvis_files(profile.data.version, data_root)
    else:
        (train_json, train_images), (val_json, val_images) = _synthetic_files(spec, Path(data_root), progress)
    train_set = LVISDetection(train_json, train_images, train=True, hflip_prob=hflip, seed=spec.seed)
    val_set = LVISDetection(val_json, val_images)
    return train_set, val_set, Path(val_json)
