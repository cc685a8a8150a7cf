"""Profiles decide scale, never code paths (docs/ARCHITECTURE.md, "Profiles and scale"): data, detector
size and training schedule.

- ``smoke``: a few dozen synthetic images, seconds per notebook; the tests execute every notebook with it.
- ``quick`` (default): the embedded synthetic long-tail benchmark on a CPU, minutes.
- ``oi-smoke``, ``oi-quick``: the same scales for the Open Images track (paper §5, Tables 5–7).
- ``lvis-v0.5``, ``lvis-v1``, ``openimages``: the paper's setting on the real datasets (GPUs).

The paper's Faster R-CNN R50-FPN at 800/1333 px is far too slow for a CPU (docs/ARCHITECTURE.md,
"Profiles and scale"), so the CPU profiles map it to a narrow ResNet-FPN at small image sizes and say so
in ``model_note``.
"""

from __future__ import annotations

from dataclasses import replace

from .config import PAPER_LOSS_DEFAULTS, DetectorConfig, LVISData, OpenImagesData, Profile, SyntheticConfig, TrainConfig

DEFAULT_PROFILE = "quick"


def _cpu_detector(image_size: int, rois_per_image: int) -> DetectorConfig:
    return DetectorConfig(
        # the fine-tunes from the pretrained start train the box head's second layer and the predictor, on its
        # cached proposals and first-layer features (docs/ARCHITECTURE.md, "The pretrained start")
        frozen_backbone=True,
        frozen_rpn=True,
        frozen_fc6=True,
        backbone="narrow_resnet",
        fpn_channels=64,
        min_size=image_size,
        max_size=image_size,
        anchor_sizes=(8, 16, 32, 64, 128),
        rpn_pre_nms_top_n_train=600,
        rpn_post_nms_top_n_train=300,
        rpn_pre_nms_top_n_test=300,
        rpn_post_nms_top_n_test=150,
        rpn_batch_size_per_image=128,
        rois_per_image=rois_per_image,
        representation_size=256,
        # the LVIS test-time floor of mmdetection's and detectron2's LVIS configs; on quick it leaves AP unchanged
        # and skips decoding and NMS of near-zero scores (benchmarks/bench_train_step.py, evaluation)
        score_thresh=1e-4,
    )


# Scaled-down counterparts of the paper's ResNet-101 and ResNeXt-101 64x4d (acsl.models.backbones).
_CPU_LARGER_BACKBONES = {"ResNet-101": {"backbone": "narrow_resnet_deep"},
                         "ResNeXt-101 64x4d": {"backbone": "narrow_resnet_wide"}}
_CPU_LARGER_NOTE = ("ResNet-101 → narrow ResNet with 3 blocks in the stride-16 stage (R101 deepens R50's stage 3 from "
                    "6 to 23 blocks); ResNeXt-101 64x4d → the same depth at 1.5× the widths (24–192), plain BasicBlocks; "
                    "the R50 stand-in is the profile's narrow ResNet (1 block per stage); each pretrained like the R50 stand-in and fine-tuned from its own start")

_PRETRAIN_NOTE = ("COCO-trained start → a detector pretrained on the benchmark's training images with COCO-like labels "
                  "(each frequent category its own class, every common and rare category only its shape; "
                  "docs/ARCHITECTURE.md, \"The pretrained start\"); the fine-tunes keep its backbone, FPN, RPN and the box "
                  "head's first layer frozen and train the box head's second layer and the predictor on its cached "
                  "proposals and first-layer features (the paper fine-tunes everything above the first stage)")


_SHARED_NOTE = ("one benchmark and one pretrained start (seed 0) for every seed, as the paper's detectors share one LVIS "
                "and one COCO model: a seed replicates the fine-tune (new layers' initialisation, image order, flips, "
                "RoI sampling; docs/ARCHITECTURE.md, \"Seeds and intervals\")")


#: NorCal's γ on the synthetic profiles: the highest mAP of the softmax baseline's calibrated scores on
#: quick-tuning, before NorCal ran on any reported seed (scripts/calibrate_norcal.py; docs/ARCHITECTURE.md,
#: "NorCal's γ"). Its authors ship none (their default 0 is the plain softmax).
NORCAL_GAMMA = 0.8


def _fine_tune_note(epochs: int, step: int) -> str:
    """The model note's schedule phrase for a ``epochs``-epoch 1x fine-tune with the lr step at ``step``."""
    return f"1x = {epochs} epochs of fine-tuning (lr 0.04, ×0.1 at {step}), 2x = {2 * epochs}, stage 2 = {epochs}"


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        data=SyntheticConfig(num_categories=12, num_train_images=24, num_val_images=12, image_size=96, seed=0),
        detector=_cpu_detector(image_size=96, rois_per_image=32),
        stage1=TrainConfig(epochs=2, batch_size=4, lr=0.02, warmup_iters=4, lr_steps=(), log_every=1),
        stage2=TrainConfig(epochs=1, batch_size=4, lr=0.02, warmup_iters=2, lr_steps=(), log_every=1),
        pretrain=TrainConfig(epochs=2, batch_size=4, lr=0.02, warmup_iters=4, lr_steps=(), log_every=1),
        cached_stage2=True,
        eval_batch_size=6,
        model_note="R50-FPN → narrow ResNet-FPN (BasicBlock widths 16–128, FPN 64) at 96 px, 32 RoIs/image; "
        "pretrained start as in quick; 2 + 2 + 1 epochs on 24 synthetic images: checks that the pipeline runs, its "
        "numbers mean nothing",
        description="a few dozen synthetic images; seconds per notebook; used by the tests",
        larger_backbones=_CPU_LARGER_BACKBONES,
        larger_backbones_note=_CPU_LARGER_NOTE,
        loss_defaults={"eql": {"lambda_": 100.4 / 24}, "droploss": {"lambda_": 100.4 / 24}, "gol": {"lambda_": 100.4 / 24},
                       "bags": {"bins": "0,1,6,36"}, "norcal": {"gamma": NORCAL_GAMMA}},
        sampler_defaults={"repeat_factor": {"threshold": 12 / 24}},
    ),
    "quick": Profile(
        name="quick",
        # up to 24 objects per image: about 14 annotations per training image, as long-tailed as LVIS v0.5 in
        # annotations (docs/ARCHITECTURE.md, "The synthetic benchmark")
        data=SyntheticConfig(num_categories=60, num_train_images=1000, num_val_images=250, image_size=128, seed=0,
                             max_objects_per_image=24, lookalike_fraction=0.6),
        benchmark_seed=0,
        detector=_cpu_detector(image_size=128, rois_per_image=64),
        # the RoI heads' fine-tune, calibrated on quick-tuning with the softmax baseline alone
        # (docs/ARCHITECTURE.md, "Calibrating the benchmark"): 24 epochs at lr 0.04 (×0.1 at 20) is converged
        # (2x − 1x ≤ 3 mAP) where 12 is not
        stage1=TrainConfig(epochs=24, batch_size=8, lr=0.04, warmup_iters=25, lr_steps=(20,), log_every=10),
        stage2=TrainConfig(epochs=24, batch_size=8, lr=0.02, warmup_iters=25, lr_steps=(20,), log_every=10),
        pretrain=TrainConfig(epochs=4, batch_size=8, lr=0.02, warmup_iters=100, lr_steps=(3,), log_every=10),
        # the one-stage RetinaNet (beyond the paper), calibrated on quick-tuning with the focal loss alone
        # (docs/ARCHITECTURE.md, "A one-stage detector"): a 24-epoch start, and a 6-epoch 1x that passes the
        # doubling test (12 epochs add +2.03 mAP)
        one_stage_pretrain=TrainConfig(epochs=24, batch_size=8, lr=0.02, warmup_iters=100, lr_steps=(20,), log_every=10),
        one_stage_fine_tune=TrainConfig(epochs=6, batch_size=8, lr=0.04, warmup_iters=25, lr_steps=(5,), log_every=10),
        cached_stage2=True,
        report_seeds=(0, 1, 2),
        eval_batch_size=10,
        model_note="R50-FPN at 800/1333 px → narrow ResNet-FPN (BasicBlock widths 16–128, FPN 64) at 128 px, "
        "64 RoIs/image; " + _PRETRAIN_NOTE + "; pretraining 4 epochs (lr ×0.1 at 3), " + _fine_tune_note(epochs=24, step=20)
        + " (as many as stage 1, as in the paper), on cached box-head features; batch 8; " + _SHARED_NOTE,
        description="the embedded synthetic long-tail benchmark on a CPU; minutes",
        larger_backbones=_CPU_LARGER_BACKBONES,
        larger_backbones_note=_CPU_LARGER_NOTE,
        # EQL's and DropLoss's tail: the rare and common classes, as their λ cuts LVIS; GOL's the same here (its
        # λ = 0.0011 on LVIS v1 also takes 17 of the frequent classes)
        loss_defaults={"eql": {"lambda_": 100.4 / 1000}, "droploss": {"lambda_": 100.4 / 1000},
                       "gol": {"lambda_": 100.4 / 1000}, "bags": {"bins": "0,8,53,565"},
                       "norcal": {"gamma": NORCAL_GAMMA}},
        sampler_defaults={"repeat_factor": {"threshold": 57 / 1000}},
    ),
}


def _paper_profile(version: str) -> Profile:
    """The paper's recipe (docs/ARCHITECTURE.md, "Training recipe"): Faster R-CNN R50-FPN from a
    COCO-trained detector, 800/1333 px, 2000 proposals, 512 RoIs per image at 25 % positives, 2×1024 FC
    head; 16 images per step, SGD with momentum 0.9 and weight decay 1e-4, 500-iteration warm-up at 1/3,
    clipping at 35, 12 epochs with lr ×0.1 at 8 and 11; stage 1 lr 0.01 (official code), stage 2 lr 0.02."""
    return Profile(
        name=f"lvis-{version}",
        data=LVISData(version),
        detector=DetectorConfig(backbone="resnet50", init="torchvision-coco"),
        stage1=TrainConfig(epochs=12, batch_size=16, lr=0.01, warmup_iters=500, lr_steps=(8, 11), log_every=50),
        stage2=TrainConfig(epochs=12, batch_size=16, lr=0.02, warmup_iters=500, lr_steps=(8, 11), log_every=50),
        eval_batch_size=2,
        loader_workers=4,  # JPEG decoding at 800/1333 px must keep a GPU fed
        model_note=f"the paper's setting: Faster R-CNN R50-FPN initialised from torchvision's COCO-trained detector, "
        f"800/1333 px, LVIS {version} train / val",
        description=f"real LVIS {version} + COCO 2017 images (`acsl data download lvis-{version}` and `coco2017`); GPUs, hours",
        # No COCO-trained R101/X101 Faster R-CNN ships with torchvision: these start from its ImageNet weights.
        larger_backbones={
            "ResNet-101": {"backbone": "resnet101", "init": None, "pretrained_backbone": True},
            "ResNeXt-101 64x4d": {"backbone": "resnext101_64x4d", "init": None, "pretrained_backbone": True},
        },
        larger_backbones_note="torchvision's ResNet-101 and ResNeXt-101 64x4d FPN with ImageNet weights (torchvision ships "
        "no COCO-trained detector for them), frozen batch norms, 800/1333 px",
    )


#: The Open Images track's loss defaults: EQL's tail is the rare and common groups, as LVIS's λ makes it
#: there, because the groups follow the real Challenge 2019 shares (acsl.data.openimages_groups).
OPENIMAGES_LOSS_DEFAULTS = {**PAPER_LOSS_DEFAULTS, "eql": {"tail_from_groups": True}}


def _openimages_profile(name: str, base: Profile, description: str) -> Profile:
    """The Open Images track (paper §5) at a CPU profile's scale: the synthetic Open-Images-style set
    (``acsl.data.openimages_synthetic``: the Open Images count curve, a class hierarchy, group-of boxes,
    verified image-level labels), multi-label training, the challenge metric."""
    return Profile(
        name=name,
        data=replace(base.data, curve="openimages"),
        detector=base.detector,
        stage1=base.stage1,
        stage2=base.stage2,
        pretrain=base.pretrain,
        pretrain_profile=(base.pretrain_profile or base.name) if base.pretrain is not None else None,
        benchmark_seed=base.benchmark_seed,
        report_seeds=base.report_seeds,
        cached_stage2=base.cached_stage2,
        eval_batch_size=base.eval_batch_size,
        model_note=base.model_note + "; Open Images track: multi-label sigmoid training over the class hierarchy",
        description=description,
        larger_backbones={"ResNet101-FPN": {"backbone": "narrow_resnet_deep"},
                          "ResNet152-FPN": {"backbone": "narrow_resnet_deeper"}},
        larger_backbones_note="ResNet-101 → narrow ResNet with 3 blocks in the stride-16 stage; ResNet-152 → 2 and 5 blocks "
                              "in the stride-8 and stride-16 stages (R152 deepens R101's 4 → 8 and 23 → 36); the R50 stand-in "
                              "is the profile's narrow ResNet",
        track="openimages",
        # EQL's tail: the rare and common groups, which follow the real Open Images shares on this track
        # (acsl.data.openimages_groups); BAGS and RFS keep the paper's values
        loss_defaults=OPENIMAGES_LOSS_DEFAULTS,
    )


def _tuning_profile(base: Profile, seed: int) -> Profile:
    """``base`` on its calibration draw: the benchmark and pretrained start of ``seed``, a seed no report
    uses (docs/ARCHITECTURE.md, "Calibrating the benchmark"). The benchmark's settings and the fine-tune's
    schedule were chosen on it with the baseline alone, before any other method ran on ``base``."""
    return replace(
        base,
        name=f"{base.name}-tuning",
        benchmark_seed=seed,
        report_seeds=(seed,),
        pretrain_profile=None,
        model_note=base.model_note.replace(f"(seed {base.benchmark_seed})", f"(seed {seed})"),
        description=f"{base.name} on its calibration draw (benchmark, start and training seed {seed}); never reported",
    )


PROFILES["quick-tuning"] = _tuning_profile(PROFILES["quick"], seed=3)

PROFILES["oi-smoke"] = _openimages_profile("oi-smoke", PROFILES["smoke"],
                                           "the smoke scale of the Open Images track; used by the tests")
PROFILES["oi-quick"] = _openimages_profile("oi-quick", PROFILES["quick"],
                                           "the Open Images track on a synthetic Open-Images-style set on a CPU; minutes")
PROFILES["lvis-v0.5"] = _paper_profile("v0.5")
PROFILES["lvis-v1"] = _paper_profile("v1")


def _real_openimages_profile() -> Profile:
    """Paper §5 on the real Open Images Challenge 2019 files: the same detector and recipe as the LVIS
    profiles (R50-FPN from torchvision's COCO-trained detector, docs/ARCHITECTURE.md, "Training recipe"),
    multi-label sigmoid training over the class hierarchy, the challenge's AP@0.5."""
    lvis = PROFILES["lvis-v0.5"]
    return replace(
        lvis,
        name="openimages",
        data=OpenImagesData("2019"),
        model_note="the paper's setting: Faster R-CNN R50-FPN initialised from torchvision's COCO-trained detector, "
        "800/1333 px, the LVIS recipe's schedule; Open Images Challenge 2019 train / validation (500 classes), "
        "multi-label sigmoid training over the class hierarchy, the challenge's AP@0.5",
        description="real Open Images Challenge 2019 files (`acsl data download openimages`) and images under "
        "openimages/images/{train,validation}; GPUs, days",
        larger_backbones={
            "ResNet101-FPN": {"backbone": "resnet101", "init": None, "pretrained_backbone": True},
            "ResNet152-FPN": {"backbone": "resnet152", "init": None, "pretrained_backbone": True},
        },
        track="openimages",
        loss_defaults=OPENIMAGES_LOSS_DEFAULTS,
    )


PROFILES["openimages"] = _real_openimages_profile()


def openimages_counterpart(name: str) -> str:
    """The Open Images track's profile at the scale of ``name`` (smoke → oi-smoke, quick → oi-quick); the
    notebooks of Tables 5–7 take the report's profile and run this one."""
    if get_profile(name).track == "openimages":
        return name
    if isinstance(get_profile(name).data, LVISData):  # the paper's setting: the real Open Images files
        return "openimages"
    counterpart = f"oi-{name}"
    if counterpart not in PROFILES:
        raise ValueError(f"the Open Images track has no counterpart of profile {name!r}; "
                         f"known: {', '.join(p for p in PROFILES if get_profile(p).track == 'openimages')}")
    return counterpart


def get_profile(name: str) -> Profile:
    """The profile called ``name``, or a ``ValueError`` listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; known profiles: {', '.join(PROFILES)}") from None
