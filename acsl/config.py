"""The configuration of an experiment as plain, frozen dataclasses; this module imports no torch.

- ``SyntheticConfig``: size and seed of the synthetic long-tail benchmark (docs/ARCHITECTURE.md, "The
  synthetic benchmark"); ``LVISData``: real LVIS annotations over COCO 2017 images.
- ``DetectorConfig``: the detector's scale knobs (the paper's §5 values are the defaults).
- ``TrainConfig``: one training stage's schedule (paper §5: SGD, warm-up, step decay, clipping).
- ``Profile``: one row of ``acsl.profiles.PROFILES``: data, detector and the two stages' schedules,
  plus the method settings tied to the dataset's size (``loss_defaults``, ``sampler_defaults``).

Reading a table of settings (``acsl.profiles``) therefore costs no torch import.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
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
    """Size and seed of the synthetic benchmark (docs/ARCHITECTURE.md, "The synthetic benchmark"). Defaults are the ``quick`` profile.

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
    """Scale knobs of the detector; profiles set them (the paper's §4.2 values are the defaults)."""

    architecture: str = "faster_rcnn"  # or "cascade_rcnn" (three heads, Cai & Vasconcelos)
    backbone: str = "resnet50"
    pretrained_backbone: bool = False
    # Start from a trained detector: "torchvision-coco" (torchvision's COCO-trained Faster R-CNN R50-FPN,
    # fetched once into the torch hub cache) or the path of a local state dict; None: random init.
    init: str | None = None
    # Frozen batch norms (torchvision's FrozenBatchNorm2d); implied by ``init`` and ``pretrained_backbone``.
    frozen_norm: bool = False
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


@dataclass(frozen=True)
class TrainConfig:
    """One training stage's schedule (paper §4.2 gives the values; docs/ARCHITECTURE.md, "Training recipe")."""

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
class Profile:
    """One named scale of every experiment (``acsl.profiles.PROFILES``); profiles decide scale, never code paths."""

    name: str
    data: SyntheticConfig | LVISData
    detector: DetectorConfig
    stage1: TrainConfig
    stage2: TrainConfig
    eval_batch_size: int = 8
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
    # Training DataLoader worker processes (``acsl.engine.loader``); not part of a run's identity. The CPU
    # profiles load in the training process: on 2 cores, workers only compete with the model for the
    # cores (``benchmarks/bench_loader.py``: 0 and 2 workers tie, 1 is slower).
    loader_workers: int = field(default=0, compare=False)
    # "lvis" (LVIS AP, single-label softmax baseline) or "openimages" (the paper's §5: multi-label sigmoid
    # training with the class hierarchy, the challenge's AP@0.5; the baseline is sigmoid BCE).
    track: str = field(default="lvis", compare=False)

    @property
    def baseline_loss(self) -> str:
        """The loss of the stage-1 baseline that decoupled stage-2 runs start from."""
        return "bce" if self.track == "openimages" else "softmax_ce"
