"""The configuration of an experiment as plain, frozen dataclasses; this module imports no torch.

- ``SyntheticConfig``: size and seed of the synthetic long-tail benchmark (docs/ARCHITECTURE.md, "The
  synthetic benchmark"); ``LVISData``: real LVIS annotations over COCO 2017 images; ``OpenImagesData``:
  the real Open Images Challenge 2019 files.
- ``DetectorConfig``: the detector's scale knobs (the paper's §5 values are the defaults).
- ``TrainConfig``: one training stage's schedule (paper §5: SGD, warm-up, step decay, clipping).
- ``Profile``: one row of ``acsl.profiles.PROFILES``: data, detector and the two stages' schedules,
  plus the method settings tied to the dataset's size (``loss_defaults``, ``sampler_defaults``).

Reading a table of settings (``acsl.profiles``) therefore costs no torch import.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The sorted per-class count curves a synthetic benchmark can follow.
CURVES = ("lvis_v0.5", "openimages")
#: Image samplers of a training run (``acsl.data.samplers``): uniform, repeat-factor (RFS), class-aware.
SAMPLERS = ("uniform", "repeat_factor", "class_balanced")
#: Stage-2 classifier modes (``acsl.models.classifiers``): train the stage-1 classifier, re-initialise it
#: (cRT) or learn a scale per class (LWS).
CLASSIFIER_MODES = ("stage1", "reinit", "lws")
#: Distinct synthetic object identities: 8 shapes x 10 colours x 4 markings (``acsl.data.synthetic``).
MAX_CATEGORIES = 320


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and seed of the synthetic benchmark (docs/ARCHITECTURE.md, "The synthetic benchmark"). Defaults
    are the ``quick`` profile.

    num_categories: foreground categories C (2..320).
    num_train_images / num_val_images: images per split (>= 1).
    image_size: side of the square images in pixels (32..1024).
    seed: non-negative int; the whole dataset is a pure function of the config.
    max_objects_per_image: cap on drawn objects per image (annotated + unannotated, >= 1).
    lookalike_fraction: fraction (0..1) of rare-curve categories made look-alikes of a frequent one.
    curve: "lvis_v0.5" (default) or "openimages": whose sorted per-class counts the categories follow.
        The Open Images curve (its 500 challenge classes' box counts) is scaled as a whole to the image
        budget, keeping its shape: fewer classes with very few samples than LVIS (paper Figure 2).
    """

    num_categories: int = 60
    num_train_images: int = 1200
    num_val_images: int = 300
    image_size: int = 128
    seed: int = 0
    max_objects_per_image: int = 6
    lookalike_fraction: float = 0.2
    curve: str = "lvis_v0.5"

    def __post_init__(self) -> None:
        def check_int(field: str, lo: int, hi: int | None = None) -> None:
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"SyntheticConfig.{field} must be an int, got {v!r}")
            if v < lo or (hi is not None and v > hi):
                rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
                raise ValueError(f"SyntheticConfig.{field} must be {rng}, got {v}")

        check_int("num_categories", 2, MAX_CATEGORIES)
        check_int("num_train_images", 1)
        check_int("num_val_images", 1)
        check_int("image_size", 32, 1024)
        check_int("seed", 0)
        check_int("max_objects_per_image", 1, 50)
        f = self.lookalike_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 <= f <= 1.0:
            raise ValueError(f"SyntheticConfig.lookalike_fraction must be a float in [0, 1], got {f!r}")
        object.__setattr__(self, "lookalike_fraction", float(f))  # 1 and 1.0: same files
        if self.curve not in CURVES:
            raise ValueError(f"SyntheticConfig.curve must be one of {CURVES}, got {self.curve!r}")

    def record(self) -> dict[str, Any]:
        """The config as plain data; ``curve`` only when not the default, so every benchmark generated
        before the field existed keeps its config record (and every experiment its hash)."""
        record = dataclasses.asdict(self)
        if record["curve"] == "lvis_v0.5":
            del record["curve"]
        return record


@dataclass(frozen=True)
class DetectorConfig:
    """Scale knobs of the detector; profiles set them (the paper's values are the defaults,
    docs/ARCHITECTURE.md, "Training recipe")."""

    architecture: str = "faster_rcnn"  # or "cascade_rcnn" (three heads, Cai & Vasconcelos)
    backbone: str = "resnet50"
    pretrained_backbone: bool = False
    # Start from a trained detector: "torchvision-coco" (torchvision's COCO-trained Faster R-CNN R50-FPN,
    # fetched once into the torch hub cache) or the path of a local state dict; None: random init.
    init: str | None = None
    # Frozen batch norms (torchvision's FrozenBatchNorm2d); implied by ``init`` and ``pretrained_backbone``.
    frozen_norm: bool = False
    # In a fine-tune from the synthetic profiles' pretrained start: the backbone and FPN stay as pretrained
    # and the RPN and RoI heads train (docs/ARCHITECTURE.md, "The pretrained start"). Stage 0 ignores it.
    frozen_backbone: bool = False
    # With ``frozen_backbone``: the RPN stays as pretrained too, so only the RoI heads train, on FPN maps and
    # proposals cached once per pretrained start (``acsl.engine.proposal_cache``). Stage 0 ignores it.
    frozen_rpn: bool = False
    # With ``frozen_rpn``: the box head's first layer (fc6) stays as pretrained too, so the fine-tune trains
    # its second layer and the predictor. Stage 0 ignores it.
    frozen_fc6: bool = False
    fpn_channels: int = 256
    min_size: int = 800
    max_size: int = 1333
    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)
    rpn_pre_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_test: int = 1000
    rpn_batch_size_per_image: int = 256
    rois_per_image: int = 512
    positive_fraction: float = 0.25
    representation_size: int = 1024
    score_thresh: float = 0.0
    nms_thresh: float = 0.5
    detections_per_img: int = 300

    def __post_init__(self) -> None:
        hints = detector_field_types()
        for name, (low, high) in DETECTOR_LIMITS.items():
            value = parse_typed(getattr(self, name), hints[name], f"DetectorConfig.{name}")
            object.__setattr__(self, name, value)  # "true" → True, [8, 16] → (8, 16); a number stays as given
            for item in value if isinstance(value, tuple) else (value,):
                if item is not None and not isinstance(item, (bool, str)) and not low <= item <= high:
                    raise ValueError(f"DetectorConfig.{name} must lie in [{low}, {high}], got {value!r}")
        if self.max_size < self.min_size:
            raise ValueError(f"DetectorConfig.max_size ({self.max_size}) must be >= min_size ({self.min_size})")
        if self.frozen_rpn and not self.frozen_backbone:
            raise ValueError("DetectorConfig.frozen_rpn needs frozen_backbone: the RPN reads the FPN maps, so it can "
                             "stay fixed only when they do")
        if not self.anchor_sizes:
            raise ValueError("DetectorConfig.anchor_sizes must name at least one anchor size, got ()")


@functools.cache
def detector_field_types() -> dict[str, Any]:
    """Each ``DetectorConfig`` field's declared type."""
    return typing.get_type_hints(DetectorConfig)


_COUNT = (1, 1_000_000)
#: Each ``DetectorConfig`` field with the range its values must lie in (booleans and strings: any value of
#: the type; a tuple: each item).
DETECTOR_LIMITS: dict[str, tuple[float, float]] = {
    "architecture": (0, 0), "backbone": (0, 0), "pretrained_backbone": (0, 0), "init": (0, 0), "frozen_norm": (0, 0),
    "frozen_backbone": (0, 0), "frozen_rpn": (0, 0), "frozen_fc6": (0, 0),
    "fpn_channels": _COUNT, "min_size": (16, 8192), "max_size": (16, 8192), "anchor_sizes": _COUNT,
    "rpn_pre_nms_top_n_train": _COUNT, "rpn_post_nms_top_n_train": _COUNT, "rpn_pre_nms_top_n_test": _COUNT,
    "rpn_post_nms_top_n_test": _COUNT, "rpn_batch_size_per_image": _COUNT, "rois_per_image": _COUNT,
    "positive_fraction": (1e-9, 1.0), "representation_size": _COUNT, "score_thresh": (0.0, 1.0),
    "nms_thresh": (0.0, 1.0), "detections_per_img": _COUNT,
}


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def parse_typed(value: Any, annotation: Any, name: str) -> Any:
    """``value`` as the type ``annotation`` declares (int, float, bool, str, ``X | None``, ``tuple[int, ...]``,
    ``Sequence[int]`` and unions of these), or a ``ValueError`` that names ``name`` and the value.

    The one typed option parser of the command line and the experiment specs: a value from the command line
    arrives as JSON or a plain string ("0.7", "abc", "8,16,32"), one from Python as itself. A value that
    already has the declared type is returned unchanged (an int where a float is declared stays an int, so
    a spec's hash does not move); numbers must be finite."""
    arms = _union_arms(annotation)
    if arms is not None:
        if value is None and type(None) in arms:
            return None
        for arm in arms:  # a value of one arm's own type stays as it is ("0,2,6" for ``str | Sequence[int]``)
            if _has_type(value, arm):
                return parse_typed(value, arm, name)
        expected = []
        for arm in sorted((a for a in arms if a is not type(None)), key=lambda a: a is str):  # str: the fallback
            try:
                return parse_typed(value, arm, name)
            except ValueError:
                expected.append(_expected(arm))
        if type(None) in arms:
            expected.append("null")
        raise ValueError(f"{name}: expected {' or '.join(expected)}, got {value!r}")
    return _parse_single(value, annotation, name)


def _union_arms(annotation: Any) -> tuple | None:
    """The arms of ``X | Y``, or None for a single type."""
    return typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else None


def _has_type(value: Any, annotation: Any) -> bool:
    if typing.get_origin(annotation) in (tuple, Sequence, list):
        return isinstance(value, (list, tuple))
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(annotation, type) and isinstance(value, annotation)


def _expected(annotation: Any) -> str:
    if typing.get_origin(annotation) in (tuple, Sequence, list):
        return "a list of integers (e.g. 8,16,32)"
    return {int: "an integer", float: "a finite number", bool: "true or false", str: "a string"}.get(
        annotation, str(annotation))


def _parse_single(value: Any, annotation: Any, name: str) -> Any:
    fail = ValueError(f"{name}: expected {_expected(annotation)}, got {value!r}")
    if annotation is Any:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise fail
    if annotation is int:
        if isinstance(value, str):
            value = _json_number(value, fail)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value != int(value):
            raise fail
        return int(value)
    if annotation is float:
        if isinstance(value, str):
            value = _json_number(value, fail)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise fail
        return value
    if annotation is str:
        if isinstance(value, str):
            return value
        raise fail
    if typing.get_origin(annotation) in (tuple, Sequence, list):
        (item,) = {a for a in typing.get_args(annotation) if a is not Ellipsis} or {Any}
        if isinstance(value, str):
            text = value.strip().strip("[]()")
            value = [part for part in text.replace(" ", "").split(",") if part] if text else []
        if not isinstance(value, (list, tuple)):
            raise fail
        return tuple(parse_typed(v, item, f"{name}[{k}]") for k, v in enumerate(value))
    raise ValueError(f"{name}: options of type {annotation} are not supported")


def _json_number(text: str, fail: ValueError) -> Any:
    try:
        return json.loads(text.strip())
    except ValueError:
        raise fail from None


@dataclass(frozen=True)
class TrainConfig:
    """One training stage's schedule (docs/ARCHITECTURE.md, "Training recipe", gives the paper's values)."""

    epochs: int = 12
    batch_size: int = 16
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_iters: int = 500
    warmup_ratio: float = 1.0 / 3.0
    lr_steps: tuple[int, ...] = (8, 11)
    gamma: float = 0.1
    grad_clip: float = 35.0
    hflip_prob: float = 0.5
    log_every: int = 10

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"TrainConfig: epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if self.lr <= 0:
            raise ValueError(f"TrainConfig: lr must be > 0, got {self.lr}")


def scale_lr_to_batch(config: TrainConfig, total_batch: int) -> TrainConfig:
    """The linear scaling rule (Goyal et al. 2017): the lr grows with the total batch size;
    ``config``'s lr is the one for ``config.batch_size`` images per step."""
    if total_batch < 1:
        raise ValueError(f"total batch size must be >= 1, got {total_batch}")
    return dataclasses.replace(config, batch_size=total_batch, lr=config.lr * total_batch / config.batch_size)


#: The paper's dataset-size-dependent method settings on LVIS v0.5 (see ``Profile.loss_defaults``).
PAPER_LOSS_DEFAULTS: dict[str, dict[str, Any]] = {"eql": {"lambda_": 1.77e-3}, "bags": {"bins": "0,10,100,1000"}}
PAPER_SAMPLER_DEFAULTS: dict[str, dict[str, Any]] = {"repeat_factor": {"threshold": 1e-3}}


@dataclass(frozen=True)
class LVISData:
    """Real LVIS annotations (``version`` "v0.5" or "v1") over COCO 2017 images, in the layout that
    ``acsl data download lvis-<version>`` and ``acsl data download coco2017`` create under the data root."""

    version: str

    def __post_init__(self) -> None:
        if self.version not in ("v0.5", "v1"):
            raise ValueError(f"LVISData.version must be 'v0.5' or 'v1', got {self.version!r}")


@dataclass(frozen=True)
class OpenImagesData:
    """The real Open Images Challenge ``challenge`` object-detection files (500 classes, the label
    hierarchy, verified image-level labels) in the layout ``acsl data download openimages`` creates under
    the data root, with the images in ``<root>/openimages/images/{train,validation}/<ImageID>.jpg``."""

    challenge: str = "2019"

    def __post_init__(self) -> None:
        if self.challenge != "2019":
            raise ValueError(f"OpenImagesData.challenge must be '2019', got {self.challenge!r}")


@dataclass(frozen=True)
class Profile:
    """One named scale of every experiment (``acsl.profiles.PROFILES``); profiles decide scale, never code paths."""

    name: str
    data: SyntheticConfig | LVISData | OpenImagesData
    detector: DetectorConfig
    stage1: TrainConfig
    stage2: TrainConfig
    eval_batch_size: int = 8
    # The synthetic profiles' analogue of the paper's COCO-trained start (docs/ARCHITECTURE.md, "The
    # pretrained start"): a detector trained with this schedule on the benchmark's training images labelled
    # by shape (``acsl.data.coarse``), whose backbone, FPN, RPN and box head every stage-1 run starts from.
    # None: stage 1 starts from the detector's ``init`` (the real-data profiles: torchvision's COCO weights).
    pretrain: TrainConfig | None = None
    # The one-stage (RetinaNet) fine-tune's schedule from its own pretrained start, calibrated on its own
    # (docs/ARCHITECTURE.md, "A one-stage detector"); None: ``stage1``'s.
    one_stage_fine_tune: TrainConfig | None = None
    # ... and its pretrained start's (a RetinaNet learns slower than a Faster R-CNN); None: ``pretrain``'s.
    one_stage_pretrain: TrainConfig | None = None
    # The profile whose pretrained start this one shares (None: its own); the Open Images track at a CPU
    # scale starts from the LVIS track's, as the paper's detectors all start from COCO.
    pretrain_profile: str | None = None
    # The notebooks' default for decoupled stage 2 (their ``fast_stage2=None``): on cached box-head features
    # (``acsl.engine.roi_cache``, the CPU profiles) or exact (the real-data profiles). Not part of a run's
    # identity: the spec says which one a run is.
    cached_stage2: bool = field(default=False, compare=False)
    # The notebooks' default seeds for the headline comparisons (their ``seeds=None``; Tables 2 and 4): ours
    # becomes a mean with a 95 % t interval (docs/ARCHITECTURE.md, "Seeds and intervals"). Not part of a
    # run's identity.
    report_seeds: tuple[int, ...] = field(default=(0,), compare=False)
    # A synthetic profile's one benchmark and one pretrained start, shared by every seed (docs/ARCHITECTURE.md,
    # "Seeds and intervals"): the seed that generates the benchmark and trains the start, whatever the run's
    # seed, as the paper's detectors are all trained on one LVIS from one COCO model; a run's seed then
    # replicates its own training (initialisation of the new layers, image order, flips, RoI sampling). None:
    # every seed generates its own benchmark and trains its own start.
    benchmark_seed: int | None = None
    model_note: str = ""
    description: str = field(default="", compare=False)
    # The paper's Table 3 backbones → this profile's detector overrides (ExperimentSpec.detector).
    larger_backbones: dict[str, dict] = field(default_factory=dict, compare=False)
    larger_backbones_note: str = field(default="", compare=False)
    # Method settings tied to the dataset's size, by loss name and by sampler name: the options a method
    # recipe (``acsl.runs.methods.method_spec``) adds to its own. The paper's values on LVIS v0.5:
    # - RFS's t (Gupta et al.: 1e-3, i.e. classes in fewer than 0.1 % of the images, 57 of v0.5's 56,740,
    #   are repeated). A synthetic profile uses the t that repeats the same share of its classes (67 %;
    #   ``acsl.data.stats.equivalent_threshold`` on image counts, measured on its seed-0 benchmark).
    # - EQL's λ (Tan et al.: 1.77e-3, so that f < λ holds exactly for the rare and common classes, ≤ 100
    #   of 56,740 images). A synthetic profile keeps that meaning: 100.4 images over its own number of
    #   training images (its frequency field follows LVIS's absolute rule).
    # - BAGS's group boundaries on training-instance counts (Li et al.: 0, 10, 100, 1000). A synthetic
    #   profile uses the boundaries that cut its classes in the same shares (equivalent_threshold on
    #   instance counts, measured on its seed-0 benchmark).
    loss_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: dict(PAPER_LOSS_DEFAULTS),
                                                           compare=False)
    sampler_defaults: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: dict(PAPER_SAMPLER_DEFAULTS), compare=False)
    # Training DataLoader worker processes on CUDA (``acsl.engine.loader``); not part of a run's identity.
    # On the CPU images load in the training process: on 2 cores, workers only compete with the model for
    # the cores (``benchmarks/bench_loader.py``: 0 and 2 workers tie, 1 is slower).
    loader_workers: int = field(default=0, compare=False)
    # "lvis" (LVIS AP, single-label softmax baseline) or "openimages" (the paper's §5: multi-label sigmoid
    # training with the class hierarchy, the challenge's AP@0.5; the baseline is sigmoid BCE).
    track: str = field(default="lvis", compare=False)

    @property
    def baseline_loss(self) -> str:
        """The loss of the stage-1 baseline that decoupled stage-2 runs start from."""
        return "bce" if self.track == "openimages" else "softmax_ce"
