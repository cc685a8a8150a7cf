"""Experiments as frozen, hashable specs, and a run store that caches their results by spec hash.

An ``ExperimentSpec`` names a profile, a loss (with options), a training stage and a schedule length.
Its hash covers everything that decides the result — the resolved profile (data, detector, schedules),
the loss and its options, the stage-1 parent of a stage-2 run, and the seed — so asking for a finished
spec returns the stored metrics instantly, and every stage-2 spec (each ξ of Table 2) reuses the one
stage-1 detector of its parent spec (DESIGN §2: "spec → run store → metrics JSON").
"""

from __future__ import annotations

import hashlib
import inspect
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from torch import nn

from .data import LVISDetection
from .data.samplers import build_sampler
from .data.synthetic import generate_benchmark
from .engine import distributed, load_checkpoint, load_stage1_weights, predict, resolve_device, train
from .engine.trainer import CHECKPOINT_NAME, TrainConfig, scale_lr_to_batch
from .evaluation import evaluate_lvis
from .io import atomic_write_json, ensure_writable_dir
from .losses import LOSSES, build_loss
from .models import DetectorConfig, build_detector
from .models.classifiers import CLASSIFIER_MODES, apply_stage2_classifier
from .data.synthetic import SyntheticConfig
from .profiles import LVISData, Profile, get_profile

# 2: anchors and RoIs sampled per image from (seed, epoch, index); total batch size in the spec.
SPEC_FORMAT_VERSION = 2
METRICS_NAME = "metrics.json"
REPORTED_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf")

OptionValue = float | int | bool | str


@dataclass(frozen=True)
class ExperimentSpec:
    """One trained-and-evaluated detector.

    stage 1 trains the whole detector with ``loss`` for ``schedule`` × the profile's stage-1 epochs;
    stage 2 starts from the stage-1 softmax baseline (1x, same profile, seed and batch size) and trains
    only the classifier with ``loss`` for the profile's stage-2 epochs. ``batch_size`` (the total over all
    processes; None: the profile's) scales the lr linearly (``scale_lr_to_batch``). ``cached`` (stage 2
    only) trains the classifier on box-head features cached once from the frozen stage-1 detector
    (``acsl.engine.roi_cache``) instead of running the detector every step. ``detector`` overrides
    fields of the profile's ``DetectorConfig`` (e.g. ``(("architecture", "cascade_rcnn"),
    ("backbone", "resnet101"))`` for Table 3); a stage-2 spec's parent has the same detector.
    """

    profile: str
    loss: str = "softmax_ce"
    loss_options: tuple[tuple[str, OptionValue], ...] = ()
    stage: int = 1
    schedule: int = 1
    seed: int = 0
    batch_size: int | None = None
    cached: bool = False
    detector: tuple[tuple[str, OptionValue | None], ...] = ()
    sampler: str = "uniform"
    sampler_options: tuple[tuple[str, OptionValue], ...] = ()
    classifier: str = "stage1"

    def __post_init__(self) -> None:
        get_profile(self.profile)
        object.__setattr__(self, "detector", tuple(sorted(dict(self.detector).items())))
        self.detector_config()  # unknown fields, architectures or backbones fail here
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; registered losses: {', '.join(sorted(LOSSES))}")
        if self.stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {self.stage}")
        if self.schedule < 1:
            raise ValueError(f"schedule must be a positive multiple of the 1x schedule, got {self.schedule}")
        if self.cached and self.stage != 2:
            raise ValueError("cached=True is the fast decoupled stage 2; it needs stage=2")
        profile = get_profile(self.profile)
        # A total batch equal to the profile's names the same training: drop it, so the hash is the same.
        if self.batch_size is not None and self.batch_size == profile.stage1.batch_size == profile.stage2.batch_size:
            object.__setattr__(self, "batch_size", None)
        if self.cached and self.detector_config().architecture != "faster_rcnn":
            raise ValueError("cached=True (the fast stage 2) supports Faster R-CNN only; Cascade R-CNN's heads see "
                             "boxes refined by the heads before them, so its stage 2 must run exactly")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 (or None for the profile's), got {self.batch_size}")
        object.__setattr__(self, "loss_options", tuple(sorted(dict(self.loss_options).items())))
        # Fail now, not after an hour of stage-1 training, on a bad option such as ξ outside (0, 1].
        loss = build_loss(self.loss, 3, ("r", "c", "f"), class_image_counts=(1, 1, 1),
                          class_instance_counts=(1, 1, 1), num_images=3, **dict(self.loss_options))
        object.__setattr__(self, "sampler_options", tuple(sorted(dict(self.sampler_options).items())))
        build_sampler(self.sampler, [(1,), (2,), (1, 3)], **dict(self.sampler_options))
        if self.classifier not in CLASSIFIER_MODES:
            raise ValueError(f"unknown classifier mode {self.classifier!r}; choose one of {', '.join(CLASSIFIER_MODES)}")
        if self.classifier != "stage1":
            if self.stage != 2:
                raise ValueError(f"classifier={self.classifier!r} (cRT's re-initialised or LWS's scaled classifier) "
                                 "is a decoupled stage-2 recipe; it needs stage=2")
            if not isinstance(loss.build_classifier(4), nn.Linear) or loss.num_logits != 4:
                raise ValueError(f"classifier={self.classifier!r} needs a loss that trains the plain C + 1 linear "
                                 f"classifier; {self.loss!r} trains another")

    @property
    def parent(self) -> ExperimentSpec | None:
        """The stage-1 detector a stage-2 spec starts from."""
        if self.stage == 1:
            return None
        return ExperimentSpec(profile=self.profile, loss=get_profile(self.profile).baseline_loss, seed=self.seed,
                              batch_size=self.batch_size, detector=self.detector)

    @property
    def name(self) -> str:
        options = "-".join(f"{k}{v}" for k, v in self.loss_options)
        batch = f"batch{self.batch_size}" if self.batch_size is not None else ""
        cached = "cached" if self.cached else ""
        sampler = "" if self.sampler == "uniform" else self.sampler + "".join(f"-{k}{v}" for k, v in self.sampler_options)
        classifier = "" if self.classifier == "stage1" else self.classifier
        detector = "-".join(str(v) for k, v in self.detector if k in ("architecture", "backbone"))
        return "_".join(p for p in (self.profile, detector, f"stage{self.stage}", self.loss, options, sampler, classifier,
                                    f"{self.schedule}x", batch, cached, f"seed{self.seed}") if p)

    def detector_config(self) -> DetectorConfig:
        """The profile's detector with this spec's overrides."""
        from dataclasses import fields

        from .models.backbones import BACKBONES
        from .models.detector import ARCHITECTURES

        base = get_profile(self.profile).detector
        known = {f.name for f in fields(DetectorConfig)}
        unknown = sorted(set(dict(self.detector)) - known)
        if unknown:
            raise ValueError(f"unknown detector field(s) {', '.join(unknown)}; DetectorConfig has {', '.join(sorted(known))}")
        config = replace(base, **dict(self.detector))
        if config.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown detector architecture {config.architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
        if config.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {config.backbone!r}; choose one of {', '.join(BACKBONES)}")
        return config

    def resolved(self) -> dict[str, Any]:
        """Everything that decides the result, as plain JSON data."""
        profile = get_profile(self.profile)
        spec = asdict(self)
        for field, default in _LATER_FIELDS.items():  # at their defaults they leave the hash as it was
            if spec[field] == default:
                del spec[field]
        return {
            "format": SPEC_FORMAT_VERSION,
            "spec": spec,
            "data": _data_record(_seeded(profile.data, self.seed)),
            "detector": asdict(self.detector_config()),
            "train": asdict(self.train_config()),
            "parent": self.parent.hash if self.parent else None,
        }

    def train_config(self) -> TrainConfig:
        """The training schedule of this spec: the profile's stage-1 schedule stretched by ``schedule``,
        or its stage-2 schedule, at the spec's total batch size."""
        profile = get_profile(self.profile)
        if self.stage == 2:
            config = profile.stage2
        else:
            base = profile.stage1
            config = replace(base, epochs=base.epochs * self.schedule, lr_steps=tuple(s * self.schedule for s in base.lr_steps))
        return config if self.batch_size is None else scale_lr_to_batch(config, self.batch_size)

    @property
    def hash(self) -> str:
        canonical = json.dumps(self.resolved(), sort_keys=True, default=list)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# Fields added after SPEC_FORMAT_VERSION 2 with their defaults: a spec that leaves them at the default
# hashes as before they existed, so stored runs stay valid.
_LATER_FIELDS = {"sampler": "uniform", "sampler_options": (), "classifier": "stage1"}


def baseline_spec(profile: str, schedule: int = 1, seed: int = 0, detector: dict | None = None) -> ExperimentSpec:
    """The baseline trained end to end: softmax cross entropy (Table 2's "baseline (1x)/(2x)"), or on the
    Open Images track multi-label sigmoid BCE (Table 5's "baseline")."""
    return ExperimentSpec(profile=profile, loss=get_profile(profile).baseline_loss, stage=1, schedule=schedule, seed=seed,
                          detector=tuple((detector or {}).items()))


def decoupled_spec(profile: str, loss: str, seed: int = 0, cached: bool = False, detector: dict | None = None,
                   **loss_options: OptionValue) -> ExperimentSpec:
    """Stage 2 with ``loss`` on top of the 1x softmax baseline (how the paper trains ACSL); ``cached``:
    on cached box-head features (the fast stage 2)."""
    return ExperimentSpec(profile=profile, loss=loss, loss_options=tuple(loss_options.items()), stage=2, seed=seed,
                          cached=cached, detector=tuple((detector or {}).items()))


def _data_record(data) -> dict[str, Any]:
    return data.record() if isinstance(data, SyntheticConfig) else asdict(data)


def _seeded(data, seed: int):
    """A synthetic benchmark is generated from the spec's seed; real data is what it is."""
    return replace(data, seed=seed) if isinstance(data, SyntheticConfig) else data


def profile_benchmark(profile: str, data_root: str | Path = "data", seed: int = 0, progress: bool = True):
    """The synthetic benchmark of ``profile`` for ``seed`` under ``data_root``, generated if missing."""
    data = get_profile(profile).data
    if not isinstance(data, SyntheticConfig):
        raise ValueError(f"profile {profile!r} uses real data, not the synthetic benchmark")
    config = replace(data, seed=seed)
    return generate_benchmark(Path(data_root) / f"synthetic-{profile}-seed{seed}", config, progress=progress)


def lvis_files(version: str, data_root: str | Path) -> tuple[tuple[Path, Path], tuple[Path, Path]]:
    """((train annotations, image root), (val annotations, image root)) of real LVIS under ``data_root``,
    or a ``DataMissingError`` listing what is missing and the command that fetches it."""
    from .data.download import require_data

    root = Path(data_root)
    require_data(f"lvis-{version}", root)
    require_data("coco2017", root)
    folder = root / f"lvis_{version}" / "annotations"
    if version == "v0.5":  # file_name inside COCO's split folders
        return ((folder / "lvis_v0.5_train.json", root / "coco" / "train2017"),
                (folder / "lvis_v0.5_val.json", root / "coco" / "val2017"))
    return ((folder / "lvis_v1_train.json", root / "coco"), (folder / "lvis_v1_val.json", root / "coco"))


class RunStore:
    """A directory of runs keyed by spec hash: ``<root>/<spec name>-<hash>/`` holds ``checkpoint.pt``,
    ``log.jsonl`` and ``metrics.json``. Benchmark data are generated under ``data_root``."""

    def __init__(self, root: str | Path = "runs", data_root: str | Path = "data", device: str = "auto",
                 progress: bool = True, processes: int = 1, amp: bool = True, channels_last: bool = False) -> None:
        if processes < 1:
            raise ValueError(f"processes must be >= 1, got {processes}")
        self.root = ensure_writable_dir(root, "run store")
        self.data_root = Path(data_root)
        self.device_name = str(device)
        self.device = resolve_device(device)
        self.progress = progress
        # Training with K > 1 processes is handed to `torchrun --nproc_per_node K -m acsl train`.
        self.processes = processes
        # Numeric precision and memory layout (CUDA only) are not part of a spec's hash; metrics.json records them.
        self.amp = amp
        self.channels_last = channels_last
        self._loaded: dict[tuple, tuple[LVISDetection, LVISDetection, Path]] = {}

    def run_dir(self, spec: ExperimentSpec) -> Path:
        return self.root / f"{spec.name}-{spec.hash}"

    def is_done(self, spec: ExperimentSpec) -> bool:
        return (self.run_dir(spec) / METRICS_NAME).is_file()

    def datasets(self, spec: ExperimentSpec) -> tuple[LVISDetection, LVISDetection, Path]:
        """(train, val, val annotation file) of the spec's profile, generating the benchmark if missing;
        loaded once per store (real LVIS annotation files take a while to parse)."""
        key = (spec.profile, spec.seed, spec.stage)
        if key not in self._loaded:
            self._loaded[key] = self._load_datasets(spec)
        return self._loaded[key]

    def _load_datasets(self, spec: ExperimentSpec) -> tuple[LVISDetection, LVISDetection, Path]:
        profile = get_profile(spec.profile)
        hflip = profile.stage2.hflip_prob if spec.stage == 2 else profile.stage1.hflip_prob
        if isinstance(profile.data, LVISData):
            (train_json, train_images), (val_json, val_images) = lvis_files(profile.data.version, self.data_root)
        else:
            with distributed.main_process_first():  # rank 0 generates, the others then read
                bench = profile_benchmark(spec.profile, self.data_root, spec.seed, self.progress and distributed.is_main_process())
            (train_json, train_images), (val_json, val_images) = (
                (bench.train_json, bench.train_images), (bench.val_json, bench.val_images))
        if profile.track == "openimages":  # the Open-Images-style files beside the benchmark (rank 0 writes)
            from .data.openimages_synthetic import write_openimages_style

            with distributed.main_process_first():
                train_json, val_json = write_openimages_style(bench, seed=spec.seed)
        train_set = LVISDetection(train_json, train_images, train=True, hflip_prob=hflip, seed=spec.seed)
        val_set = LVISDetection(val_json, val_images)
        return train_set, val_set, Path(val_json)

    def _build(self, spec: ExperimentSpec, train_set: LVISDetection):
        import torch

        torch.manual_seed(spec.seed)
        options = dict(spec.loss_options)
        if "seed" in inspect.signature(LOSSES[spec.loss]).parameters:  # its own random stream, one per process
            options.setdefault("seed", spec.seed + 1_000_003 * distributed.rank())
        loss = build_loss(spec.loss, train_set.num_classes, train_set.frequencies,
                          class_image_counts=train_set.image_counts, class_instance_counts=train_set.instance_counts,
                          num_images=len(train_set), **options)
        if get_profile(spec.profile).track == "openimages" and loss.supports_multi_label:
            # Paper §5: "we train the models under multiple label setting": a box's class and its ancestors.
            from .data.openimages_synthetic import hierarchy_ancestors

            loss.set_label_hierarchy(hierarchy_ancestors(train_set.lvis.dataset, train_set.category_id_to_label))
        return build_detector(spec.detector_config(), train_set.num_classes, loss)

    @staticmethod
    def _sampler(spec: ExperimentSpec, train_set: LVISDetection):
        return build_sampler(spec.sampler, train_set.image_labels, spec.seed, **dict(spec.sampler_options))

    def checkpoint(self, spec: ExperimentSpec) -> Path:
        """The spec's trained checkpoint, training it (and its stage-1 parent) when missing or unfinished."""
        run_dir = self.run_dir(spec)
        config = spec.train_config()
        checkpoint = run_dir / CHECKPOINT_NAME
        if checkpoint.exists() and _finished_epochs(checkpoint) >= config.epochs:
            return checkpoint
        if spec.cached:
            # Everything with collectives first, on every rank: the stage-1 parent and the datasets. Then
            # rank 0 alone builds the cache and trains the classifier (seconds of work); the others wait.
            self.checkpoint(spec.parent)
            self.datasets(spec)
            if distributed.is_main_process():
                self._train_cached(spec)
            distributed.barrier()
            return checkpoint
        if self.processes > 1 and not distributed.is_distributed():
            self._train_with_torchrun(spec)
            return checkpoint
        train_set, _, _ = self.datasets(spec)
        parent_checkpoint = self.checkpoint(spec.parent) if spec.parent else None
        model = self._build(spec, train_set)
        if parent_checkpoint is not None:
            load_stage1_weights(model, parent_checkpoint)
            apply_stage2_classifier(model, spec.classifier)
        started = time.perf_counter()
        train(model, train_set, config, run_dir, stage=spec.stage, seed=spec.seed, device=self.device,
              amp=self.amp, channels_last=self.channels_last, progress=self.progress, sampler=self._sampler(spec, train_set))
        if distributed.is_main_process():
            _record_timing(run_dir, "train_s", time.perf_counter() - started)
        return checkpoint

    def _train_cached(self, spec: ExperimentSpec) -> None:
        from .engine.roi_cache import build_roi_cache, train_classifier_on_cache

        parent_checkpoint = self.checkpoint(spec.parent)
        train_set, _, _ = self.datasets(spec)
        model = self._build(spec, train_set)
        load_stage1_weights(model, parent_checkpoint)
        apply_stage2_classifier(model, spec.classifier)
        started = time.perf_counter()
        cache = build_roi_cache(model, train_set, self.run_dir(spec.parent) / "roi_cache", seed=spec.seed,
                                device=self.device, batch_size=get_profile(spec.profile).eval_batch_size,
                                progress=self.progress)
        cache_s = time.perf_counter() - started
        run_dir = self.run_dir(spec)
        train_classifier_on_cache(model, cache, train_set, spec.train_config(), run_dir, seed=spec.seed,
                                  device=self.device, progress=self.progress, sampler=self._sampler(spec, train_set))
        _record_timing(run_dir, "train_s", time.perf_counter() - started - cache_s)
        _record_timing(run_dir, "cache_s", cache_s)  # ~0 when the parent's cache already existed

    def _train_with_torchrun(self, spec: ExperimentSpec) -> None:
        import subprocess
        import sys

        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={self.processes}",
                   "-m", "acsl", "train", *spec_arguments(spec), "--run-store", str(self.root),
                   "--data-root", str(self.data_root), "--device", self.device.type]  # each rank: cuda:LOCAL_RANK
        if not self.progress:
            command.append("--no-progress")
        if not self.amp:
            command.append("--no-amp")
        if self.channels_last:
            command.append("--channels-last")
        finished = subprocess.run(command, capture_output=not self.progress, text=True)
        if finished.returncode != 0:
            output = (finished.stderr or "")[-3000:] if not self.progress else ""
            raise RuntimeError(f"distributed training of {spec.name} with {self.processes} processes failed "
                               f"(exit {finished.returncode}): {' '.join(command)}\n{output}")

    def metrics(self, spec: ExperimentSpec) -> dict[str, Any]:
        """Stored metrics of ``spec``; trains and evaluates it first when the store has none."""
        metrics_path = self.run_dir(spec) / METRICS_NAME
        if metrics_path.is_file():
            return json.loads(metrics_path.read_text())
        checkpoint = self.checkpoint(spec)
        train_set, val_set, val_json = self.datasets(spec)
        model = self._build(spec, train_set)
        apply_stage2_classifier(model, spec.classifier)
        model.load_state_dict(load_checkpoint(checkpoint)["model"])
        started = time.perf_counter()
        detections = predict(model, val_set, get_profile(spec.profile).eval_batch_size, self.device, self.progress)
        if not distributed.is_main_process():  # rank 0 scores the gathered detections and writes the record
            distributed.barrier()
            return json.loads(metrics_path.read_text())
        if get_profile(spec.profile).track == "openimages":
            result = _evaluate_openimages(val_json, detections)
            metrics = {"AP50_OI": 100.0 * result["AP50"]}
        else:
            result = evaluate_lvis(val_json, detections)
            metrics = {name: 100.0 * result[name] for name in REPORTED_METRICS}
        eval_s = time.perf_counter() - started
        timings = _read_timings(self.run_dir(spec))
        record = {
            "spec": asdict(spec),
            "hash": spec.hash,
            "metrics": metrics,
            "per_class_AP": {str(k): 100.0 * v for k, v in result["per_class_AP"].items()},
            "num_detections": len(detections),
            "timing": {**timings, "eval_s": eval_s},
            "device": str(self.device),
            "amp": self.amp and self.device.type == "cuda",
        }
        atomic_write_json(metrics_path, record)
        distributed.barrier()
        return json.loads(metrics_path.read_text())  # the same form a cached read gives


def _evaluate_openimages(val_json: Path, detections: list[dict]) -> dict[str, Any]:
    """The Open Images challenge metric on the track's val file, with its class hierarchy."""
    from .data.hierarchy import ClassHierarchy
    from .evaluation.openimages_eval import evaluate_openimages

    truth = json.loads(Path(val_json).read_text())
    hierarchy = ClassHierarchy.from_category_json(truth.get("hierarchy", {}))
    # The multi-label detectors score every parent class themselves; expanding their detections as well
    # would add a duplicate parent box per object (the challenge's evaluator expands only the ground truth).
    return evaluate_openimages(truth, detections, hierarchy=hierarchy, expand_detections=False)


def spec_arguments(spec: ExperimentSpec) -> list[str]:
    """``acsl train`` / ``acsl eval`` arguments that name ``spec`` (the inverse of the CLI's parsing)."""
    arguments = ["--profile", spec.profile, "--loss", spec.loss, "--stage", str(spec.stage),
                 "--schedule", str(spec.schedule), "--seed", str(spec.seed)]
    if spec.batch_size is not None:
        arguments += ["--batch-size", str(spec.batch_size)]
    if spec.cached:
        arguments.append("--cached-stage2")
    if spec.sampler != "uniform":
        arguments += ["--sampler", spec.sampler]
    for key, value in spec.sampler_options:
        arguments += ["--sampler-option", f"{key}={json.dumps(value)}"]
    if spec.classifier != "stage1":
        arguments += ["--classifier", spec.classifier]
    for key, value in spec.detector:
        arguments += ["--detector", f"{key}={json.dumps(value)}"]
    for key, value in spec.loss_options:
        arguments += ["--option", f"{key}={json.dumps(value)}"]
    return arguments


def parse_option(text: str, what: str = "loss option") -> tuple[str, OptionValue | None]:
    """``key=value`` from the command line; the value is read as JSON (0.7, 4, true, null, "name"), else
    as a plain string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"{what} {text!r} is not of the form key=value (e.g. xi=0.7)")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    if parsed is not None and not isinstance(parsed, (int, float, bool, str)):
        raise ValueError(f"{what} {key}: expected a number, true/false, null or a string, got {value!r}")
    return key, parsed


def _finished_epochs(checkpoint: Path) -> int:
    return int(load_checkpoint(checkpoint)["epoch"])


def _read_timings(run_dir: Path) -> dict[str, float]:
    path = run_dir / "timing.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _record_timing(run_dir: Path, key: str, seconds: float) -> None:
    timings = _read_timings(run_dir)
    timings[key] = timings.get(key, 0.0) + seconds
    atomic_write_json(run_dir / "timing.json", timings)
