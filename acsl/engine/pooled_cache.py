"""Pooled RoI features of a proposal cache's fixed candidates: RoIAlign once per pretrained start and
training set instead of every step (docs/ARCHITECTURE.md, "The pretrained start").

On the cached fine-tune (``acsl.engine.proposal_cache``) the FPN maps are frozen and every box the RoI
sampler can draw for an (image, flip) is known in advance: the cached proposals followed by the resized
ground-truth boxes, the candidates in the order torchvision's ``add_gt_proposals`` concatenates them.
RoIAlign of a box depends on that box and the maps alone, so ``build_pooled_cache`` pools every candidate
once (the model's ``MultiScaleRoIAlign`` on the cached maps, on the training device) and stores the
C × 7 × 7 outputs as rows of one memory-mapped file, pair after pair; ``offsets[pair]`` is the pair's first
row. ``CachedRoIHeadStep`` then samples as before (``acsl.models.roi_heads.sample_training_rois``: the same
draws, labels and regression targets) and reads the sampled rows instead of pooling. Cascade R-CNN reads
its first stage's rows; its later stages pool refined boxes from the maps. The candidates and ground truth
of a pair are fixed, so their IoU matching (torchvision's ``assign_targets_to_proposals``) is computed once per
pair and heads' thresholds and kept in memory (``PooledReader.assign``): the same tensors every epoch.

Storage: float16 by default (``build_proposal_cache``'s ``pooled_dtype``). Float32 rows are RoIAlign's
outputs bit for bit (``tests/test_pooled_cache.py``: equal losses and gradients) but on ``quick`` (2000 pairs
of about 310 candidates, 64 channels) take 7.9 GB per start and training set against float16's 3.9 GB, for
the same step time (``benchmarks/bench_train_step.py --threads 1``: 22.9 and 23.7 ms, 43.9 ms with RoIAlign).
The rows are read from the memory map, never loaded whole, so their speed rests on the page cache: a step
whose rows come from the disk spent about 70 ms reading them, more than RoIAlign costs. Float16 keeps two
training processes' caches in a 24 GiB machine's memory, and a report's ten or so caches on its disk; it
rounds each pooled value once (relative 2^-11, as the float16 maps already do). A run's numbers never
depend on whether the cache was built: without it (larger than the disk, which it leaves 10 % free, or the
limit) the step pools from the maps and rounds to the same type (``ProposalCache.pooled_features``).

The directory, ``pooled-<key>/`` inside the proposal cache's, is keyed by the pooler's settings, the storage
type, the device kind and torchvision's version (the maps and candidates are the enclosing cache's); it is
written into a temporary sibling and renamed, so an interrupted build leaves nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from tqdm import tqdm

from ..io import atomic_write_json
from ..models import LongTailFasterRCNN
from .roi_cache import CacheTooLargeError, check_cache_size

POOLED_FORMAT = 1
ROWS_NAME = "pooled.bin"
OFFSETS_NAME = "offsets.npy"
META_NAME = "meta.json"
DISK_RESERVE = 0.1  #: the share of its file system a pooled cache leaves free


class PooledScalesDiffer(ValueError):
    """The cached images' sizes give RoIAlign different level scales, so pooled rows would depend on the batch."""


def first_heads(model: LongTailFasterRCNN) -> Any:
    """The RoI heads whose candidates are the proposals and ground truth: Faster R-CNN's, Cascade R-CNN's first stage."""
    heads = model.roi_heads
    return heads.stages[0] if hasattr(heads, "stages") else heads


def pooled_identity(model: LongTailFasterRCNN, dtype: torch.dtype, device: torch.device, after_fc6: bool = False) -> dict:
    """What the pooled rows depend on besides the enclosing proposal cache (maps and candidates); rows after the
    box head's frozen first layer also depend on its weights."""
    pool = first_heads(model).box_roi_pool
    identity = {"format": POOLED_FORMAT, "dtype": str(dtype).replace("torch.", ""), "output_size": list(pool.output_size),
                "sampling_ratio": pool.sampling_ratio, "levels": list(pool.featmap_names),
                "canonical": [pool.canonical_scale, pool.canonical_level], "device": device.type,
                "torchvision": torchvision.__version__}
    if after_fc6:
        fc6 = first_heads(model).box_head.fc6
        digest = hashlib.sha256()
        for tensor in (fc6.weight, fc6.bias):
            digest.update(tensor.detach().cpu().float().numpy().tobytes())
        identity.update(after="fc6", fc6=digest.hexdigest()[:16])
    return identity


def fc6_features(model: LongTailFasterRCNN, pooled: torch.Tensor) -> torch.Tensor:
    """The box head's first layer on pooled features: relu(fc6(flatten(pooled))) (torchvision's ``TwoMLPHead``)."""
    return torch.relu(first_heads(model).box_head.fc6(pooled.flatten(start_dim=1)))


def pooled_dir_name(identity: dict) -> str:
    return "pooled-" + hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class PooledReader:
    """The rows of a batch's (image, flip) pairs, called as the RoI heads call ``pooled``."""

    cache: "PooledCache"
    pairs: list[int]
    device: torch.device

    @property
    def after_fc6(self) -> bool:
        return self.cache.after_fc6

    def __call__(self, sampled: list[torch.Tensor], boxes: Any = None) -> torch.Tensor:
        return self.cache.read(self.pairs, sampled, self.device)

    def assign(self, heads: Any, candidates: list[torch.Tensor], gt_boxes: list[torch.Tensor],
               gt_labels: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """``heads.assign_targets_to_proposals`` (matched ground-truth index, label per candidate) of each pair,
        computed the first time the pair is drawn with these thresholds and then reused: it depends on the pair's
        fixed candidates and ground truth alone (torchvision matches every image on its own)."""
        thresholds = (heads.proposal_matcher.high_threshold, heads.proposal_matcher.low_threshold)
        memo = self.cache.matches
        missing = [i for i, pair in enumerate(self.pairs) if (pair, thresholds) not in memo]
        if missing:
            matched, labels = heads.assign_targets_to_proposals(
                [candidates[i] for i in missing], [gt_boxes[i] for i in missing], [gt_labels[i] for i in missing])
            for i, image_matched, image_labels in zip(missing, matched, labels):
                memo[(self.pairs[i], thresholds)] = (image_matched, image_labels)
        found = [memo[(pair, thresholds)] for pair in self.pairs]
        return [m for m, _ in found], [label for _, label in found]


@dataclass
class PooledCache:
    """RoIAlign outputs (memory-mapped, [candidates, C·h·w]) of every candidate of every (image, flip) pair."""

    root: Path
    rows: np.ndarray
    offsets: np.ndarray
    shape: tuple[int, ...]
    after_fc6: bool = False
    matches: dict = field(default_factory=dict, repr=False)  # (pair, IoU thresholds) → PooledReader.assign's result

    def read(self, pairs: list[int], sampled: list[torch.Tensor], device: torch.device) -> torch.Tensor:
        """The pooled features [N, C, h, w] (float32) of ``sampled[i]`` (candidate indices) of pair ``pairs[i]``, in order."""
        parts = []
        for pair, indices in zip(pairs, sampled):
            indices = indices.cpu().numpy()
            if len(indices) and indices.max() >= self.offsets[pair + 1] - self.offsets[pair]:
                raise RuntimeError(f"pooled cache {self.root}: candidate {indices.max()} of pair {pair}, which has "
                                   f"{self.offsets[pair + 1] - self.offsets[pair]}; the cache does not match its proposals")
            parts.append(self.offsets[pair] + indices)
        rows = self.rows[np.concatenate(parts)] if parts else self.rows[:0]
        return torch.from_numpy(rows).to(device=device, dtype=torch.float32).view(len(rows), *self.shape)

    def reader(self, pairs: list[int], device: torch.device) -> Callable[..., torch.Tensor]:
        """``read`` for ``pairs``: what the RoI heads take as ``pooled`` (they also pass the sampled boxes); its
        ``after_fc6`` says whether the rows are already past the box head's first layer."""
        return PooledReader(self, pairs, device)

    @classmethod
    def open(cls, root: str | Path) -> PooledCache:
        root = Path(root)
        meta = json.loads((root / META_NAME).read_text())
        offsets = np.load(root / OFFSETS_NAME)
        rows = np.memmap(root / ROWS_NAME, dtype=np.dtype(meta["identity"]["dtype"]), mode="r",
                         shape=(int(offsets[-1]), math.prod(meta["shape"])))
        return cls(root, rows, offsets, tuple(meta["shape"]), meta["identity"].get("after") == "fc6")


def _is_complete(root: Path, identity: dict) -> bool:
    meta_path = root / META_NAME
    if not (meta_path.is_file() and (root / ROWS_NAME).is_file() and (root / OFFSETS_NAME).is_file()):
        return False
    return json.loads(meta_path.read_text()).get("identity") == identity


def _check_scales(cache: Any, pool: Any) -> None:
    """Refuse images whose heights give the pooler different level scales (it infers them from a batch's
    tallest image, so a row would then depend on its batch)."""
    from torchvision.ops.poolers import _infer_scale

    level, (_, height, width) = next(iter(cache.shapes.items()))
    feature = torch.empty(1, 1, height, width)
    scales = {h: _infer_scale(feature, [h, w]) for h, w in set(cache.image_sizes)}
    if len(set(scales.values())) > 1:
        raise PooledScalesDiffer(f"the cached images' heights give level {level} the scales {sorted(set(scales.values()))}; "
                                 f"pooled features would depend on the batch")


def _candidates(heads: Any, cache: Any, pairs: range, device: torch.device) -> list[torch.Tensor]:
    """Each pair's proposals followed by its ground-truth boxes, as the RoI heads concatenate them."""
    proposals = [cache.proposals[p].to(device).float() for p in pairs]
    return heads.add_gt_proposals(proposals, [cache.targets[p]["boxes"].to(device).float() for p in pairs])


@torch.no_grad()
def build_pooled_cache(
    model: LongTailFasterRCNN,
    cache: Any,
    dtype: torch.dtype = torch.float16,
    device: torch.device = torch.device("cpu"),
    batch_size: int = 8,
    progress: bool = True,
    limit_gb: float | None = None,
    after_fc6: bool = False,
) -> PooledCache:
    """The pooled features of every candidate of ``cache`` (a ``ProposalCache``) under ``model``'s pooler,
    in ``cache.root/pooled-<key>`` unless a complete one is there. ``CacheTooLargeError`` (before anything
    is written) above the free disk or ``limit_gb``; ``PooledScalesDiffer`` for images the pooler would
    scale differently. ``after_fc6``: the rows are the frozen first layer's outputs (``fc6_features``, a
    twelfth of the size), for a fine-tune that keeps that layer as pretrained (``DetectorConfig.frozen_fc6``)."""
    identity = pooled_identity(model, dtype, device, after_fc6)
    root = cache.root / pooled_dir_name(identity)
    if _is_complete(root, identity):
        return PooledCache.open(root)
    heads = first_heads(model)
    pool = heads.box_roi_pool
    _check_scales(cache, pool)
    counts = [len(p) + len(t["boxes"]) for p, t in zip(cache.proposals, cache.targets)]
    shape = (next(iter(cache.shapes.values()))[0], *pool.output_size)
    if after_fc6:
        shape = (heads.box_head.fc6.out_features,)
    estimate = sum(counts) * math.prod(shape) * torch.finfo(dtype).bits // 8
    what, hint = "the pooled RoI-feature cache", "train on the FPN maps (RoIAlign every step)"
    check_cache_size(estimate, root, limit_gb, what=what, hint=hint)
    disk = shutil.disk_usage(cache.root)
    if disk.free - estimate < DISK_RESERVE * disk.total:  # an optional speed-up: never fill the disk
        raise CacheTooLargeError(f"{what} would take about {estimate / 2 ** 30:.1f} GiB of the {disk.free / 2 ** 30:.1f} "
                                 f"GiB free under {cache.root}, leaving less than {DISK_RESERVE:.0%} of the disk; {hint}")
    staging = root.with_name(root.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    started = time.perf_counter()
    try:  # an error or an interruption leaves no half-written cache behind
        with open(staging / ROWS_NAME, "wb") as rows_file:
            for start in tqdm(range(0, len(counts), batch_size), desc="caching pooled RoI features",
                              disable=not progress, mininterval=2.0, leave=False):
                pairs = range(start, min(start + batch_size, len(counts)))
                pooled = pool(cache.features(list(pairs), device), _candidates(heads, cache, pairs, device),
                              [cache.image_sizes[p] for p in pairs])
                rows = (fc6_features(model, pooled) if after_fc6 else pooled.flatten(start_dim=1)).to(dtype)
                if not torch.isfinite(rows).all():
                    raise ValueError(f"pooled features of pairs {start}… do not fit {dtype}; build the cache in float32")
                rows_file.write(rows.cpu().numpy().tobytes())
        np.save(staging / OFFSETS_NAME, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        atomic_write_json(staging / META_NAME, {"identity": identity, "shape": list(shape),
                                                "build_s": time.perf_counter() - started})
        shutil.rmtree(root, ignore_errors=True)
        staging.rename(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return PooledCache.open(root)
