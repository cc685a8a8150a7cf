"""Fast decoupled stage 2: train the classifier on cached box-head features (DESIGN §2).

The decoupled stage 2 (the official ACSL code's second stage) trains only the final classification
layer; everything below it is frozen. So the features that layer sees can be computed once:
``build_roi_cache`` runs the frozen stage-1 detector over every training image, unflipped and flipped,
samples the RoIs as training does (RPN proposals with the training top-n, ground truth added, 512 per
image at 25 % positives, drawn from a per-image key), and stores the 2-FC box-head features of the
sampled RoIs as float16 in a memory-mapped file with their labels. ``train_classifier_on_cache`` then
runs the stage-2 schedule (same epochs, batches, flips per epoch, lr schedule, clipping) on the cache.

What differs from the exact stage 2, and may show in AP: each (image, flip) keeps the one RoI sample
drawn when the cache was built, where the exact stage 2 draws a new one every epoch; features are
rounded to float16. With a sampler that repeats images (repeat-factor, class-balanced), a second visit
in an epoch uses the other flip's rows, and a third visit the first visit's rows again, where the exact
stage 2 would draw new RoIs. ``benchmarks/bench_fast_stage2.py`` measures the time saved and the AP
difference.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..data import LVISDetection, collate_detection
from ..io import atomic_write_json
from ..models import LongTailFasterRCNN
from ..models.cascade import CascadeRoIHeads
from ..models.sampling import mix_seed
from .checkpoint import atomic_torch_save
from ..data.samplers import UniformSampler, occurrences
from .trainer import (CHECKPOINT_NAME, LOG_NAME, TrainConfig, _set_train_mode, freeze_all_but_classifier,
                      resolve_device, sgd_with_schedule, visit_flip)

CACHE_FORMAT = 1
FEATURES_NAME = "features.f16"
META_NAME = "meta.json"


@dataclass
class RoIFeatureCache:
    """Box-head features (float16, memory-mapped) and labels of the sampled RoIs of every
    (image index, flip); ``offsets[index, flip]`` is that pair's (first row, row count)."""

    root: Path
    features: np.ndarray
    labels: np.ndarray
    offsets: np.ndarray

    def rows(self, index: int, flip: bool) -> np.ndarray:
        start, count = self.offsets[index, int(flip)]
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
) -> RoIFeatureCache:
    """The RoI feature cache of ``model`` (the frozen stage-1 detector) over ``dataset``, built into
    ``cache_dir`` unless a complete one for the same images and seed is there. Written into a sibling
    temporary directory and renamed, so an interrupted build leaves nothing that looks complete."""
    if isinstance(model.roi_heads, CascadeRoIHeads):
        raise ValueError("the cached stage 2 supports Faster R-CNN only; train Cascade R-CNN's stage 2 "
                         "exactly (its three heads see boxes refined by the heads before them)")
    cache_dir = Path(cache_dir)
    expected = {"format": CACHE_FORMAT, "seed": seed, "images": len(dataset), "ann_file": str(dataset.ann_file)}
    if _cache_is_complete(cache_dir, expected):
        return RoIFeatureCache.open(cache_dir)
    device = resolve_device(device)
    model.to(device)
    _set_train_mode(model, stage=2)  # training-time proposals and sampling; batch norms frozen
    staging = cache_dir.with_name(cache_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    pairs = [(index, flip) for index in range(len(dataset)) for flip in (False, True)]
    offsets = np.zeros((len(dataset), 2, 2), dtype=np.int64)
    labels_out: list[np.ndarray] = []
    rows, dim = 0, None
    started = time.perf_counter()
    with open(staging / FEATURES_NAME, "wb") as features_file:
        chunks = range(0, len(pairs), batch_size)
        for start in tqdm(chunks, desc="caching RoI features", disable=not progress, mininterval=2.0, leave=False):
            chunk = pairs[start:start + batch_size]
            images, targets = collate_detection([dataset.get(index, flip) for index, flip in chunk])
            images = [image.to(device) for image in images]
            targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
            keys = [mix_seed(seed, index, int(flip)) for index, flip in chunk]
            with model.sampling_keys(keys):
                image_list, targets = model.transform(images, targets)
                features = model.backbone(image_list.tensors)
                proposals, _ = model.rpn(image_list, features, targets)
                proposals = [p.float() for p in proposals]
                proposals, _, labels, _ = model.roi_heads.select_training_samples(proposals, targets)
            pooled = model.roi_heads.box_roi_pool(features, proposals, image_list.image_sizes)
            box_features = model.roi_heads.box_head(pooled).float().cpu()
            dim = box_features.shape[1]
            features_file.write(box_features.to(torch.float16).numpy().tobytes())
            for (index, flip), image_labels in zip(chunk, labels):
                offsets[index, int(flip)] = (rows, len(image_labels))
                rows += len(image_labels)
                labels_out.append(image_labels.cpu().numpy())
    np.save(staging / "labels.npy", np.concatenate(labels_out).astype(np.int64))
    np.save(staging / "offsets.npy", offsets)
    atomic_write_json(staging / META_NAME, {**expected, "rows": rows, "dim": dim,
                                            "build_s": time.perf_counter() - started})
    shutil.rmtree(cache_dir, ignore_errors=True)
    staging.rename(cache_dir)
    return RoIFeatureCache.open(cache_dir)


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
) -> Path:
    """The decoupled stage 2 on the cache: the same epochs, image order (``sampler``'s, default uniform),
    per-epoch flips, lr schedule and clipping as ``train(..., stage=2)``, with the loss on the cached
    features of each batch's images. Writes the detector's checkpoint (the trained classifier in it)
    and ``log.jsonl``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(device)
    model.to(device)
    (classifier,) = model.classifiers
    parameters = freeze_all_but_classifier(model)
    loss_fn = model.classification_loss
    loss_fn.sync_across_processes = False  # this runs on one process, also inside a distributed run
    sampler = sampler or UniformSampler(len(dataset), seed)
    iters_per_epoch = math.ceil(sampler.nominal_length / config.batch_size)
    optimizer, scheduler = sgd_with_schedule(parameters, config, iters_per_epoch)
    torch.manual_seed(seed)
    log_path = out_dir / LOG_NAME
    log_path.unlink(missing_ok=True)
    labels_all = torch.from_numpy(cache.labels)
    for epoch in range(config.epochs):
        order = sampler.epoch_indices(epoch)
        visits = occurrences(order)
        batches = order.split(config.batch_size)
        bar = tqdm(batches, desc=f"stage 2 (cached) epoch {epoch + 1}/{config.epochs}", disable=not progress,
                   mininterval=2.0, leave=False)
        for step, batch in enumerate(bar):
            batch_visits = visits[step * config.batch_size: step * config.batch_size + len(batch)].tolist()
            rows = np.concatenate([cache.rows(i, visit_flip(dataset, i, epoch, visit))
                                   for i, visit in zip(batch.tolist(), batch_visits)])
            features = torch.from_numpy(np.asarray(cache.features[rows], dtype=np.float32)).to(device)
            labels = labels_all[rows].to(device)
            loss = loss_fn(classifier(features), labels)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch + 1}, step {step}; lower the lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(parameters, config.grad_clip)
            optimizer.step()
            scheduler.step()
            iteration = scheduler.last_epoch
            if step % config.log_every == 0 or step == len(batches) - 1:
                with log_path.open("a") as handle:
                    handle.write(json.dumps({"stage": 2, "cached": True, "epoch": epoch + 1, "iteration": iteration,
                                             "lr": optimizer.param_groups[0]["lr"], "loss": loss.item(),
                                             "loss_classifier": loss.item()}) + "\n")
    checkpoint_path = out_dir / CHECKPOINT_NAME
    atomic_torch_save(
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
         "epoch": config.epochs, "stage": 2, "config": asdict(config), "cached": True},
        checkpoint_path,
    )
    return checkpoint_path
