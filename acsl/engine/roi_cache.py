"""Fast decoupled stage 2: train the classifier on cached box-head features (docs/ARCHITECTURE.md, "How a run flows").

The decoupled stage 2 (the official ACSL code's second stage) trains only the final classification
layer; everything below it is frozen. So the features that layer sees can be computed once:
``build_roi_cache`` runs the frozen stage-1 detector over every training image, unflipped and flipped,
samples the RoIs as training does (RPN proposals with the training top-n, ground truth added, 512 per
image at 25 % positives, drawn from a per-image key), and stores the 2-FC box-head features of the
sampled RoIs as float16 in a memory-mapped file with their labels. ``train_classifier_on_cache`` then
runs the stage-2 schedule (same epochs, batches, flips per epoch, lr schedule, clipping) on the cache.
Such a run is evaluated on the parent's cached val box-head features (``acsl.engine.val_cache``), with the
same detections as the whole detector gives.

Cascade R-CNN (the paper's Table 3 fine-tunes the classifiers of all three heads in stage 2): every other
layer is frozen, so each head's input boxes are fixed too (the refined boxes of the frozen heads before it).
The cache keeps, per (image, flip), each head's sampled RoIs drawn as the exact stage 2 draws them (head t
samples among head t − 1's refined boxes, ``acsl.models.cascade``), and training minimises the weighted sum
Σ_t w_t L_cls,t of the three classifiers' losses, as the exact stage 2 does. A Cascade R-CNN run is evaluated
with the whole detector.

What differs from the exact stage 2, and may show in AP: each (image, flip) keeps the one RoI sample
drawn when the cache was built, where the exact stage 2 draws a new one every epoch; features are
rounded to float16. With a sampler that repeats images (repeat-factor, class-balanced), a second visit
in an epoch uses the other flip's rows, and a third visit the first visit's rows again, where the exact
stage 2 would draw new RoIs. ``benchmarks/bench_fast_stage2.py`` measures the time saved and the AP
difference.

Size: rows per image (the RoI sampler's 512; × 3 heads for Cascade R-CNN) × feature width (1024) × 2 bytes ×
2 flips, plus 8 bytes of label per row: about 2 MiB per image at the paper's scale, 110 GiB for LVIS v0.5's 57k training images.
``estimate_cache_bytes`` gives it before anything is written, and ``build_roi_cache`` refuses (with the
estimate) a cache larger than the free disk or the limit (``limit_gb``, or the ``ACSL_CACHE_LIMIT_GB``
environment variable). ``flips=False`` caches the unflipped RoIs only, half the size: every visit of an
image then reads its unflipped rows, so the classifier never sees a flipped image's features (the
exact stage 2 flips half of them). Measured on the ``smoke`` profile (ACSL, ξ = 0.7, seeds 0/1/2; quick
is too slow for this check), AP in %: exact 0.43/0.04/0.41, cached 0.76/0.04/0.40, cached without flips
0.45/0.04/0.40, so both stay within 0.35 points of the exact stage 2 there; at that scale AP is below 1 %,
so this bounds the gap only loosely, and the gap at paper scale is not measured.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..config import TrainConfig
from ..data import LVISDetection, collate_detection
from ..data.samplers import UniformSampler, occurrences
from ..io import atomic_write_json
from ..models import LongTailFasterRCNN
from ..models.sampling import mix_seed
from .loader import visit_flip
from .loop import StepOutput, TrainLoop
from .steps import freeze_all_but_classifier, set_train_mode
from .trainer import resolve_device

CACHE_FORMAT = 2  # 2: rows per head (Cascade R-CNN)
FEATURES_NAME = "features.f16"
META_NAME = "meta.json"
CACHE_LIMIT_ENV = "ACSL_CACHE_LIMIT_GB"


class CacheTooLargeError(RuntimeError):
    """The RoI-feature cache would not fit the free disk or the configured limit; the message has the estimate."""


def estimate_cache_bytes(num_images: int, rois_per_image: int, feature_dim: int, flips: bool = True,
                         heads: int = 1) -> int:
    """Bytes of a RoI-feature cache: float16 features and int64 labels of every sampled RoI of every
    (image, flip) and head, plus the offsets table; an upper bound when an image has fewer proposals than RoIs."""
    rows = num_images * (2 if flips else 1) * rois_per_image * heads
    return rows * feature_dim * 2 + rows * 8 + num_images * 2 * heads * 2 * 8 + 2 * 128  # .npy headers


def check_cache_size(estimate: int, cache_dir: Path, limit_gb: float | None = None,
                     what: str = "the RoI-feature cache", hint: str | None = None) -> None:
    """Refuse a cache of ``estimate`` bytes above the free disk under ``cache_dir`` or the limit in GB
    (``limit_gb``, else ``$ACSL_CACHE_LIMIT_GB``, else none); ``what`` names the cache, ``hint`` the way out."""
    if limit_gb is None and os.environ.get(CACHE_LIMIT_ENV):
        limit_gb = float(os.environ[CACHE_LIMIT_ENV])
    existing = next(p for p in (cache_dir, *cache_dir.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    gib = 2 ** 30
    hint = hint or ("train the exact stage 2 (no --cached-stage2), cache without the flipped copy (half the size: "
                    "--cache-no-flips), or use a --subset of the images")
    if estimate > free:
        raise CacheTooLargeError(f"{what} would take about {estimate / gib:.1f} GiB but only "
                                 f"{free / gib:.1f} GiB are free under {existing}; {hint}")
    if limit_gb is not None and estimate > limit_gb * 1e9:
        raise CacheTooLargeError(f"{what} would take about {estimate / gib:.1f} GiB, above the limit "
                                 f"of {limit_gb} GB ({CACHE_LIMIT_ENV} or cache_limit_gb); {hint}, or raise the limit")


@dataclass
class RoIFeatureCache:
    """Box-head features (float16, memory-mapped) and labels of the sampled RoIs of every
    (image index, flip) and head; ``offsets[index, flip, head]`` is their (first row, row count)."""

    root: Path
    features: np.ndarray
    labels: np.ndarray
    offsets: np.ndarray

    @property
    def heads(self) -> int:
        """Box heads with rows: 1 (Faster R-CNN), 3 (Cascade R-CNN)."""
        return self.offsets.shape[2]

    def rows(self, index: int, flip: bool, head: int = 0) -> np.ndarray:
        """The rows of (image, flip) for ``head``; a cache built without flips gives the unflipped rows for both."""
        start, count = self.offsets[index, int(flip), head]
        return np.arange(start, start + count)

    @classmethod
    def open(cls, root: str | Path) -> RoIFeatureCache:
        root = Path(root)
        meta = json.loads((root / META_NAME).read_text())
        features = np.memmap(root / FEATURES_NAME, dtype=np.float16, mode="r", shape=(meta["rows"], meta["dim"]))
        return cls(root, features, np.load(root / "labels.npy"), np.load(root / "offsets.npy"))


def _cache_is_complete(root: Path, expected: dict) -> bool:
    meta_path = root / META_NAME
    if not meta_path.is_file():
        return False
    meta = json.loads(meta_path.read_text())
    return all(meta.get(k) == v for k, v in expected.items())


@torch.no_grad()
def build_roi_cache(
    model: LongTailFasterRCNN,
    dataset: LVISDetection,
    cache_dir: str | Path,
    seed: int = 0,
    device: str | torch.device = "auto",
    batch_size: int = 8,
    progress: bool = True,
    flips: bool = True,
    limit_gb: float | None = None,
    proposals: Any = None,
) -> RoIFeatureCache:
    """The RoI feature cache of ``model`` (the frozen stage-1 detector) over ``dataset``, built into
    ``cache_dir`` unless a complete one for the same images and seed is there. Written into a sibling
    temporary directory and renamed, so an interrupted build leaves nothing that looks complete.
    ``flips=False``: the unflipped RoIs only (half the size). A ``CacheTooLargeError`` with the size
    estimate comes before anything is written when the cache exceeds the free disk or ``limit_gb``."""
    cache_dir = Path(cache_dir)
    expected = {"format": CACHE_FORMAT, "seed": seed, "images": len(dataset), "ann_file": str(dataset.ann_file)}
    if not flips:
        expected["flips"] = False
    if _cache_is_complete(cache_dir, expected):
        return RoIFeatureCache.open(cache_dir)
    proposal_cache = proposals
    (classifier, *_) = model.classifiers
    heads = len(model.classifiers)
    estimate = estimate_cache_bytes(len(dataset), model.roi_heads.samplers[0].batch_size_per_image,
                                    classifier.in_features, flips, heads)
    check_cache_size(estimate, cache_dir, limit_gb)
    device = resolve_device(device)
    model.to(device)
    set_train_mode(model, stage=2)  # training-time proposals and sampling; batch norms frozen
    staging = cache_dir.with_name(cache_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    pairs = [(index, flip) for index in range(len(dataset)) for flip in ((False, True) if flips else (False,))]
    offsets = np.zeros((len(dataset), 2, heads, 2), dtype=np.int64)
    labels_out: list[np.ndarray] = []
    rows, dim = 0, None
    started = time.perf_counter()
    with open(staging / FEATURES_NAME, "wb") as features_file:
        chunks = range(0, len(pairs), batch_size)
        for start in tqdm(chunks, desc="caching RoI features", disable=not progress, mininterval=2.0, leave=False):
            chunk = pairs[start:start + batch_size]
            keys = [mix_seed(seed, index, int(flip)) for index, flip in chunk]
            with model.sampling_keys(keys):
                if proposal_cache is None:
                    features, proposals, targets, image_sizes = _frozen_detector_inputs(model, dataset, chunk, device)
                else:
                    features, proposals, targets, image_sizes = proposal_cache.inputs(chunk, device)
                sampled = sampled_head_features(model.roi_heads, features, proposals, targets, image_sizes)
            for head, (box_features, labels) in enumerate(sampled):
                box_features = box_features.float().cpu()
                dim = box_features.shape[1]
                features_file.write(box_features.to(torch.float16).numpy().tobytes())
                for (index, flip), image_labels in zip(chunk, labels):
                    offsets[index, int(flip) if flips else slice(None), head] = (rows, len(image_labels))
                    rows += len(image_labels)
                    labels_out.append(image_labels.cpu().numpy())
    np.save(staging / "labels.npy", np.concatenate(labels_out).astype(np.int64))
    np.save(staging / "offsets.npy", offsets)
    atomic_write_json(staging / META_NAME, {**expected, "rows": rows, "dim": dim, "estimated_bytes": estimate,
                                            "build_s": time.perf_counter() - started})
    shutil.rmtree(cache_dir, ignore_errors=True)
    staging.rename(cache_dir)
    return RoIFeatureCache.open(cache_dir)


def sampled_head_features(heads: Any, features: dict[str, torch.Tensor], proposals: list[torch.Tensor],
                          targets: list[dict[str, torch.Tensor]], image_sizes: list) -> list[tuple[torch.Tensor, list]]:
    """Per box head, (box-head features [R, D] of its sampled RoIs, each image's labels), drawn as training draws
    them under the current sampling keys. Faster R-CNN: one head. Cascade R-CNN: head t samples among head t − 1's
    refined boxes (``CascadeRoIHeads.forward``)."""
    stages = getattr(heads, "stages", [heads])
    out = []
    proposals = [p.float() for p in proposals]
    for index, stage in enumerate(stages):
        proposals, _, labels, _ = stage.select_training_samples(proposals, targets)
        hidden = stage.box_head(stage.box_roi_pool(features, proposals, image_sizes))
        out.append((hidden, labels))
        if index + 1 < len(stages):
            _, deltas = stage.box_predictor(hidden)
            proposals = heads._refine(stage, deltas, proposals, image_sizes)
    return out


def _frozen_detector_inputs(model: LongTailFasterRCNN, dataset: LVISDetection, chunk: list[tuple[int, bool]],
                            device: torch.device) -> tuple:
    """(FPN maps, training proposals, resized targets, image sizes) of (image, flip) pairs under the
    frozen detector, computed from the images."""
    images, targets = collate_detection([dataset.get(index, flip) for index, flip in chunk])
    images = [image.to(device) for image in images]
    targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
    image_list, targets = model.transform(images, targets)
    features = model.backbone(image_list.tensors)
    proposals, _ = model.rpn(image_list, features, targets)
    return features, [p.float() for p in proposals], targets, image_list.image_sizes


class CachedClassifierStep:
    """``TrainLoop``'s step kind for the decoupled stage 2 on the cache: the classifier(s) alone on the cached
    features of a batch's images, with the same image order (the sampler's), per-epoch flips and visits as
    the exact stage 2; Cascade R-CNN's loss is Σ_t w_t L_cls,t over its heads. It runs on one process, also
    inside a distributed run."""

    collective = False
    stage = 2
    description = "stage 2 (cached)"
    log_fields = {"cached": True}

    def __init__(self, model: LongTailFasterRCNN, cache: RoIFeatureCache, dataset: LVISDetection,
                 sampler: UniformSampler, batch_size: int, device: torch.device) -> None:
        model.to(device)
        self.classifiers = model.classifiers
        self.loss_weights = getattr(model.roi_heads, "loss_weights", (1.0,))
        if len(self.classifiers) != cache.heads:
            raise ValueError(f"the RoI-feature cache {cache.root} has rows of {cache.heads} box head(s), the detector "
                             f"{len(self.classifiers)}; rebuild the cache for this detector")
        self.model, self.cache, self.dataset, self.sampler = model, cache, dataset, sampler
        self.batch_size, self.device = batch_size, device
        self.loss_fn = model.classification_loss
        self.loss_fn.sync_across_processes = False  # this runs on one process, also inside a distributed run
        self.labels = torch.from_numpy(cache.labels)

    def parameters(self) -> list[torch.nn.Parameter]:
        return freeze_all_but_classifier(self.model)

    def start(self) -> None:
        pass

    def batches(self, epoch: int) -> list[tuple[list[np.ndarray], int]]:
        """Each batch's cache rows per head (every image's sampled RoIs, in the flip of its visit) and image count."""
        order = self.sampler.epoch_indices(epoch)
        visits = occurrences(order)
        batches = []
        for batch, batch_visits in zip(order.split(self.batch_size), visits.split(self.batch_size)):
            pairs = [(index, visit_flip(self.dataset, index, epoch, visit))
                     for index, visit in zip(batch.tolist(), batch_visits.tolist())]
            batches.append(([np.concatenate([self.cache.rows(index, flip, head) for index, flip in pairs])
                             for head in range(self.cache.heads)], len(batch)))
        return batches

    def run(self, batch: tuple[list[np.ndarray], int]) -> StepOutput:
        rows_per_head, images = batch
        loss = None
        for classifier, weight, rows in zip(self.classifiers, self.loss_weights, rows_per_head):
            features = torch.from_numpy(np.asarray(self.cache.features[rows], dtype=np.float32)).to(self.device)
            term = self.loss_fn(classifier(features), self.labels[rows].to(self.device))
            term = term if weight == 1.0 else weight * term
            loss = term if loss is None else loss + term
        return StepOutput(loss, {"loss_classifier": loss}, images)


def train_classifier_on_cache(
    model: LongTailFasterRCNN,
    cache: RoIFeatureCache,
    dataset: LVISDetection,
    config: TrainConfig,
    out_dir: str | Path,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    sampler: UniformSampler | None = None,
    resume: bool = True,
    max_iters: int | None = None,
) -> Path:
    """The decoupled stage 2 on the cache: the same epochs, image order (``sampler``'s, default uniform),
    per-epoch flips, lr schedule and clipping as ``train(..., stage=2)``, in the same loop. Writes the
    detector's checkpoint (the trained classifier in it) and ``log.jsonl``."""
    device = resolve_device(device)
    sampler = sampler or UniformSampler(len(dataset), seed)
    step = CachedClassifierStep(model, cache, dataset, sampler, config.batch_size, device)
    iters_per_epoch = math.ceil(sampler.nominal_length / config.batch_size)
    return TrainLoop(step, config, out_dir, iters_per_epoch, seed=seed, device=device, amp=False, resume=resume,
                     progress=progress, max_iters=max_iters).run()
