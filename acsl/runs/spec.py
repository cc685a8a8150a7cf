"""Experiments as frozen, hashable specs (docs/ARCHITECTURE.md, "How a run flows").

An ``ExperimentSpec`` names a profile, a loss (with options), a training stage, a schedule length, an
image sampler and a stage-2 classifier mode. Its hash covers everything that decides the result — the
resolved profile (data, detector, schedules), the loss, its options and its revision (when not 0), the
stage-1 parent of a stage-2 run, and the seed — so asking the run store for a finished spec returns the
stored metrics at once, and every stage-2 spec (each ξ of Table 2) reuses the one stage-1 detector of its
parent spec.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from functools import cached_property
from typing import Any

from ..config import DetectorConfig, Profile, SyntheticConfig, TrainConfig, scale_lr_to_batch
from ..data.samplers import build_sampler
from ..data.openimages_groups import GROUP_RULE
from ..data.openimages_lvis import CONVERT_VERSION
from ..data.openimages_synthetic import STYLE_VERSION
from ..data.synthetic import CONTENT_VERSION as SYNTHETIC_CONTENT_VERSION
from ..losses import DENSE_LOSSES, LOSSES, build_dense_loss, build_loss, loss_class
from ..models.backbones import BACKBONES
from ..models.classifiers import CLASSIFIER_MODES
from ..models.detector import ARCHITECTURES
from ..profiles import get_profile
from .options import typed_detector_fields, typed_loss_options, typed_sampler_options

# 2: anchors and RoIs sampled per image from (seed, epoch, index); total batch size in the spec.
SPEC_FORMAT_VERSION = 2

OptionValue = float | int | bool | str

# Fields added after SPEC_FORMAT_VERSION 2 with their defaults: a spec that leaves them at the default
# hashes as before they existed, so stored runs stay valid.
_LATER_FIELDS = {"sampler": "uniform", "sampler_options": (), "classifier": "stage1",
                 "max_iters": None, "subset": None, "cache_flips": True}


@dataclass(frozen=True)
class ExperimentSpec:
    """One trained-and-evaluated detector.

    stage 1 trains the whole detector with ``loss`` for ``schedule`` × the profile's stage-1 epochs;
    stage 2 starts from the stage-1 baseline (1x, same profile, seed, batch size and detector) and trains
    only the classifier with ``loss`` for the profile's stage-2 epochs. ``batch_size`` (the total over all
    processes; None: the profile's) scales the lr linearly (``scale_lr_to_batch``). ``cached`` (stage 2
    only) trains the classifier on box-head features cached once from the frozen stage-1 detector
    (``acsl.engine.roi_cache``) instead of running the detector every step. ``detector`` overrides
    fields of the profile's ``DetectorConfig`` (e.g. ``(("architecture", "cascade_rcnn"),
    ("backbone", "resnet101"))`` for Table 3). ``max_iters`` stops training after that many iterations
    and ``subset`` keeps the first N images of train and of val (bounded sanity runs: they hash apart
    from full runs, and a stage-2 spec's parent is bounded alike). ``cache_flips=False`` (with ``cached``)
    caches the unflipped RoIs only, half the cache (``acsl.engine.roi_cache``).
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
    max_iters: int | None = None
    subset: int | None = None
    cache_flips: bool = True

    def __post_init__(self) -> None:
        self._parse_options()
        settings = self.settings  # an unknown profile fails here
        # A total batch equal to the profile's names the same training: drop it, so the hash is the same.
        if self.batch_size is not None and self.batch_size == settings.stage1.batch_size == settings.stage2.batch_size:
            object.__setattr__(self, "batch_size", None)
        self._check_schedule()
        self._check_bounds()
        self._check_detector()
        self._check_loss_and_classifier()

    def _parse_options(self) -> None:
        """Every option value in its declared type, sorted by name (``acsl.runs.options``): "abc" for a
        number fails here, naming the option, before anything is built."""
        object.__setattr__(self, "detector", typed_detector_fields(self.detector))
        object.__setattr__(self, "loss_options", typed_loss_options(self.loss, self.loss_options))
        object.__setattr__(self, "sampler_options", typed_sampler_options(self.sampler, self.sampler_options))

    @cached_property
    def settings(self) -> Profile:
        """The profile this spec runs at, resolved once."""
        return get_profile(self.profile)

    def _check_schedule(self) -> None:
        if self.stage not in (0, 1, 2):
            raise ValueError(f"stage must be 0 (pretraining), 1 or 2, got {self.stage}")
        if self.stage == 0:
            self._check_pretrain()
        if self.schedule < 1:
            raise ValueError(f"schedule must be a positive multiple of the 1x schedule, got {self.schedule}")
        if self.cached and self.stage != 2:
            raise ValueError("cached=True is the fast decoupled stage 2; it needs stage=2")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 (or None for the profile's), got {self.batch_size}")
        self._check_batch_fits()

    def _check_batch_fits(self) -> None:
        """A total batch larger than the synthetic training set is refused now (real data: when it is loaded,
        ``acsl.engine.trainer.train``): its linearly scaled lr would make training diverge."""
        data = self.settings.data
        batch = self.train_config().batch_size
        if isinstance(data, SyntheticConfig) and batch > data.num_train_images:
            raise ValueError(f"batch_size {batch} is larger than the training set of profile {self.profile!r} "
                             f"({data.num_train_images} images); give a batch size of at most "
                             f"{data.num_train_images} (the lr scales with it)")

    def _check_pretrain(self) -> None:
        """Stage 0 is the synthetic profiles' pretrained start (``acsl.data.coarse``): softmax CE on the
        coarse labels, the 1x pretraining schedule, a Faster R-CNN; or the focal loss for a RetinaNet's own start."""
        if self.settings.pretrain is None:
            raise ValueError(f"profile {self.profile!r} has no pretraining stage (stage 0); its stage 1 starts from "
                             f"the detector's init ({self.settings.detector.init!r})")
        architecture = dict(self.detector).get("architecture", self.settings.detector.architecture)
        loss = "dense_focal" if self.one_stage else "softmax_ce"
        if (self.loss, self.schedule, self.cached, self.sampler, self.loss_options) != (loss, 1, False, "uniform", ()):
            raise ValueError("stage 0 (pretraining) is softmax CE (a RetinaNet's: the focal loss), schedule 1, uniform "
                             "sampling; use acsl.runs.pretrain_spec")
        if architecture not in ("faster_rcnn", "retinanet"):
            raise ValueError("stage 0 (pretraining) trains a Faster R-CNN or a RetinaNet; a Cascade R-CNN loads the Faster "
                             "R-CNN's backbone, FPN, RPN and box heads")

    def _check_bounds(self) -> None:
        for field in ("max_iters", "subset"):
            value = getattr(self, field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{field} must be a positive integer (or None: unbounded), got {value!r}")
        if not self.cache_flips and not self.cached:
            raise ValueError("cache_flips=False shrinks the RoI-feature cache of the fast stage 2; it needs cached=True")

    def _check_detector(self) -> None:
        self.detector_config()  # unknown fields, architectures or backbones fail here

    def _check_loss_and_classifier(self) -> None:
        """Fail now, not after an hour of stage-1 training, on a bad option such as ξ outside (0, 1]."""
        if self.one_stage or self.loss in DENSE_LOSSES:
            self._check_one_stage()
            return
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; registered losses: {', '.join(sorted(LOSSES))}")
        loss = build_loss(self.loss, 3, ("r", "c", "f"), class_image_counts=(1, 1, 1),
                          class_instance_counts=(1, 1, 1), num_images=3, **dict(self.loss_options))
        build_sampler(self.sampler, [(1,), (2,), (1, 3)], **dict(self.sampler_options))
        if self.classifier not in CLASSIFIER_MODES:
            raise ValueError(f"unknown classifier mode {self.classifier!r}; choose one of {', '.join(CLASSIFIER_MODES)}")
        if self.classifier != "stage1":
            if self.stage != 2:
                raise ValueError(f"classifier={self.classifier!r} (cRT's re-initialised or LWS's scaled classifier) "
                                 "is a decoupled stage-2 recipe; it needs stage=2")
            if not loss.uses_plain_linear_classifier:
                raise ValueError(f"classifier={self.classifier!r} needs a loss that trains the plain C + 1 linear "
                                 f"classifier; {self.loss!r} trains another")

    @property
    def one_stage(self) -> bool:
        """A RetinaNet (``acsl.models.retinanet``), trained by a dense loss (``acsl.losses.DENSE_LOSSES``)."""
        return dict(self.detector).get("architecture", self.settings.detector.architecture) == "retinanet"

    def _check_one_stage(self) -> None:
        """A one-stage spec names a dense loss and trains end to end: its start (stage 0) or a fine-tune (stage 1)."""
        if not self.one_stage:
            raise ValueError(f"loss {self.loss!r} is a one-stage (dense) loss: it needs detector architecture "
                             f"'retinanet'")
        if self.loss not in DENSE_LOSSES:
            raise ValueError(f"a RetinaNet trains with a one-stage loss ({', '.join(sorted(DENSE_LOSSES))}), "
                             f"not {self.loss!r}")
        if self.settings.pretrain is None:
            raise ValueError(f"a RetinaNet starts from its own pretrained start (stage 0), which profile {self.profile!r} "
                             f"does not train (its detector's init, {self.settings.detector.init!r}, is a Faster R-CNN's)")
        if self.stage == 2 or self.classifier != "stage1" or self.cached:
            raise ValueError("a RetinaNet is trained end to end (stage 0 or 1): no decoupled stage 2, cached features "
                             "or stage-2 classifier")
        build_dense_loss(self.loss, 3, ("r", "c", "f"), **dict(self.loss_options))
        build_sampler(self.sampler, [(1,), (2,), (1, 3)], **dict(self.sampler_options))

    @property
    def parent(self) -> ExperimentSpec | None:
        """The run this spec starts from: a stage-2 spec's stage-1 baseline; a stage-1 spec's pretrained
        start (stage 0) when its profile has one; None otherwise."""
        if self.stage == 0:
            return None
        if self.stage == 1:
            if self.settings.pretrain is None:
                return None
            return pretrain_spec(self.profile, seed=self.data_seed, batch_size=self.batch_size, detector=dict(self.detector),
                                 max_iters=self.max_iters, subset=self.subset)
        return ExperimentSpec(profile=self.profile, loss=self.settings.baseline_loss, seed=self.seed,
                              batch_size=self.batch_size, detector=self.detector, max_iters=self.max_iters,
                              subset=self.subset)

    @cached_property
    def trained_as(self) -> ExperimentSpec | None:
        """The spec whose trained detector this one evaluates, for a loss that only transforms another's test
        scores (NorCal, ``ClassificationLoss.trained_as``): the same spec with the base loss. None: this spec
        trains its own detector."""
        if self.loss not in LOSSES:  # a one-stage loss trains its own
            return None
        twin = LOSSES[self.loss].trained_as(dict(self.loss_options))
        if twin is None:
            return None
        loss, options = twin
        return replace(self, loss=loss, loss_options=tuple(options.items()))

    @property
    def on_cached_proposals(self) -> bool:
        """Trained on the pretrained start's cached FPN maps and proposals (``acsl.engine.proposal_cache``):
        a stage-1 fine-tune of the RoI heads alone (frozen backbone, FPN and RPN), and the exact (not
        ``cached``) stage 2 on top of one."""
        if self.stage == 1:
            return self.parent is not None and self.detector_config().frozen_rpn and not self.one_stage
        return self.stage == 2 and not self.cached and self.parent.on_cached_proposals

    @property
    def pretrained_start(self) -> ExperimentSpec | None:
        """The stage-0 run this spec's detector descends from (None: it has none)."""
        spec = self
        while spec is not None and spec.stage != 0:
            spec = spec.parent
        return spec

    @property
    def name(self) -> str:
        options = "-".join(f"{k}{v}" for k, v in self.loss_options)
        batch = f"batch{self.batch_size}" if self.batch_size is not None else ""
        cached = ("cached" if self.cache_flips else "cached-noflip") if self.cached else ""
        bounds = "".join(f"-{k}{v}" for k, v in (("iters", self.max_iters), ("subset", self.subset)) if v is not None)
        sampler = "" if self.sampler == "uniform" else self.sampler + "".join(f"-{k}{v}" for k, v in self.sampler_options)
        classifier = "" if self.classifier == "stage1" else self.classifier
        detector = "-".join(str(v) for k, v in self.detector if k in ("architecture", "backbone"))
        return "_".join(p for p in (self.profile, detector, f"stage{self.stage}", self.loss, options, sampler, classifier,
                                    f"{self.schedule}x", batch, cached, f"seed{self.seed}{bounds}") if p)

    def detector_config(self) -> DetectorConfig:
        """The profile's detector with this spec's overrides."""
        known = {f.name for f in fields(DetectorConfig)}
        unknown = sorted(set(dict(self.detector)) - known)
        if unknown:
            raise ValueError(f"unknown detector field(s) {', '.join(unknown)}; DetectorConfig has {', '.join(sorted(known))}")
        config = replace(self.settings.detector, **dict(self.detector))
        if self.stage == 0:  # the pretraining trains the whole detector
            config = replace(config, frozen_backbone=False, frozen_rpn=False, frozen_fc6=False)
        elif self.settings.pretrain is not None:
            # fine-tuned from the pretrained start: frozen batch norms, as torchvision fine-tunes trained detectors
            config = replace(config, frozen_norm=True)
        if config.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown detector architecture {config.architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
        if config.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {config.backbone!r}; choose one of {', '.join(BACKBONES)}")
        return config

    @property
    def data_seed(self) -> int:
        """The seed of the synthetic benchmark this spec trains and is evaluated on: the profile's one shared
        benchmark (``Profile.benchmark_seed``), else the spec's own seed."""
        shared = self.settings.benchmark_seed
        return self.seed if shared is None else shared

    def data_config(self):
        """The profile's data; a synthetic benchmark is generated from ``data_seed``, real data is what it is."""
        data = self.settings.data
        return replace(data, seed=self.data_seed) if isinstance(data, SyntheticConfig) else data

    def train_config(self) -> TrainConfig:
        """The training schedule of this spec: the profile's stage-1 schedule stretched by ``schedule``,
        or its stage-2 schedule, at the spec's total batch size."""
        if self.stage == 2:
            config = self.settings.stage2
        elif self.stage == 0:
            config = (self.settings.one_stage_pretrain if self.one_stage else None) or self.settings.pretrain
        else:
            base = (self.settings.one_stage_fine_tune if self.one_stage else None) or self.settings.stage1
            config = replace(base, epochs=base.epochs * self.schedule, lr_steps=tuple(s * self.schedule for s in base.lr_steps))
        return config if self.batch_size is None else scale_lr_to_batch(config, self.batch_size)

    def resolved(self) -> dict[str, Any]:
        """Everything that decides the result, as plain JSON data."""
        spec = asdict(self)
        for field, default in _LATER_FIELDS.items():  # at their defaults they leave the hash as it was
            if spec[field] == default:
                del spec[field]
        data = self.data_config()
        if isinstance(data, SyntheticConfig):  # a new version of the benchmark's content is another benchmark
            data_record = {**data.record(), "content_version": SYNTHETIC_CONTENT_VERSION}
        else:
            data_record = asdict(data)
        resolved = {
            "format": SPEC_FORMAT_VERSION,
            "spec": spec,
            "data": data_record,
            "detector": _detector_record(self.detector_config()),
            "train": asdict(self.train_config()),
            "parent": self.parent.hash if self.parent else None,
        }
        # A loss whose default behaviour changed (ClassificationLoss.revision) hashes apart from runs stored
        # under its older behaviour; revision 0 adds nothing, so untouched losses keep their hashes. A
        # stage-2 spec's parent carries its own loss's revision through its hash.
        revision = getattr(loss_class(self.loss), "revision", 0)
        if revision:
            resolved["loss_revision"] = revision
        twin = self.trained_as
        if twin is not None:  # evaluated on that spec's detector: a new training of it is another run
            resolved["trained_as"] = twin.hash
        if self.settings.track == "openimages":
            # the Open Images form written from the benchmark, and the rule of its frequency groups, decide every
            # run of the track (ACSL's and EQL's most of all); a new version of either is another run
            synthetic = isinstance(self.settings.data, SyntheticConfig)
            source = {"style": STYLE_VERSION} if synthetic else {"convert": CONVERT_VERSION}
            resolved["openimages"] = {**source, "groups": GROUP_RULE}
        return resolved

    def val_cache_name(self) -> str | None:
        """The val feature cache, in the parent's run directory, that evaluates this spec with the same detections
        as the whole detector (``acsl.engine.val_cache``), or None: a cached stage 2's (its parent's box head);
        a stage-1 fine-tune's whose backbone, RPN and box head's first layer are its start's, frozen (the
        start's fc6 outputs). Faster R-CNN, one process."""
        from ..engine import distributed
        from ..engine.val_cache import VAL_CACHE_NAME, VAL_FC6_CACHE_NAME

        config = self.detector_config()
        if config.architecture != "faster_rcnn" or distributed.is_distributed() or self.parent is None:
            return None
        if self.stage == 2 and self.cached:
            return VAL_CACHE_NAME
        frozen_start = config.frozen_backbone and config.frozen_rpn and config.frozen_fc6
        return VAL_FC6_CACHE_NAME if self.stage == 1 and frozen_start else None

    @cached_property
    def hash(self) -> str:
        canonical = json.dumps(self.resolved(), sort_keys=True, default=list)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def baseline_spec(profile: str, schedule: int = 1, seed: int = 0, detector: dict | None = None) -> ExperimentSpec:
    """The baseline trained end to end: softmax cross entropy (Table 2's "baseline (1x)/(2x)"), or on the
    Open Images track multi-label sigmoid BCE (Table 5's "baseline")."""
    return ExperimentSpec(profile=profile, loss=get_profile(profile).baseline_loss, stage=1, schedule=schedule, seed=seed,
                          detector=tuple((detector or {}).items()))


def _detector_record(config: DetectorConfig) -> dict[str, Any]:
    """The detector config as plain data; ``frozen_backbone`` and ``frozen_rpn`` only when set, so every run
    stored before the fields existed keeps its hash."""
    record = asdict(config)
    for later in ("frozen_backbone", "frozen_rpn", "frozen_fc6"):
        if not record[later]:
            del record[later]
    return record


def pretrain_spec(profile: str, seed: int = 0, batch_size: int | None = None, detector: dict | None = None,
                  max_iters: int | None = None, subset: int | None = None) -> ExperimentSpec:
    """The pretrained start of ``profile``'s stage-1 runs (stage 0; docs/ARCHITECTURE.md, "The pretrained
    start"): a Faster R-CNN with the same backbone, trained on the benchmark's images labelled by shape, in
    the profile whose start this one shares (``Profile.pretrain_profile``)."""
    settings = get_profile(profile)
    owner = settings.pretrain_profile or profile
    shared = get_profile(owner).benchmark_seed
    seed = seed if shared is None else shared  # one start shared by every seed
    # Cascade R-CNN starts from the Faster R-CNN's start; a RetinaNet has its own, trained with the focal loss
    one_stage = (detector or {}).get("architecture", get_profile(owner).detector.architecture) == "retinanet"
    overrides = tuple((k, v) for k, v in (detector or {}).items() if k != "architecture" or one_stage)
    return ExperimentSpec(profile=owner, loss="dense_focal" if one_stage else "softmax_ce", stage=0, seed=seed, batch_size=batch_size,
                          detector=overrides, max_iters=max_iters, subset=subset)


def decoupled_spec(profile: str, loss: str, seed: int = 0, cached: bool = False, detector: dict | None = None,
                   **loss_options: OptionValue) -> ExperimentSpec:
    """Stage 2 with ``loss`` on top of the 1x baseline (how the paper trains ACSL); ``cached``: on cached
    box-head features (the fast stage 2)."""
    return ExperimentSpec(profile=profile, loss=loss, loss_options=tuple(loss_options.items()), stage=2, seed=seed,
                          cached=cached, detector=tuple((detector or {}).items()))
