"""Fine-tune on cached FPN maps and proposals: stage 1 of the synthetic profiles (docs/ARCHITECTURE.md,
"The pretrained start").

On the CPU profiles a stage-1 run fine-tunes the pretrained start with its backbone, FPN and RPN frozen
(``DetectorConfig.frozen_backbone`` and ``frozen_rpn``): only the RoI heads train. What the RoI heads
see of an image is then fixed by the pretrained start alone: the FPN maps they pool from, the RPN's
training-time proposals (top-n before and after NMS as in training) and the resized ground truth. So
``build_proposal_cache`` computes them once per (image, flip) and pretrained start, and every stage-1 run
of that start (baseline 1x and 2x, every end-to-end method, Cascade R-CNN) trains its RoI heads on them:
``CachedRoIHeadStep`` draws the same RoIs (the image's sampling key), pools, runs the box head, the
losses, backward and the step, exactly as ``DetectorStep`` does with the frozen RPN, without re-running
the backbone, FPN and RPN every iteration (``benchmarks/bench_train_step.py``: 60 % of a step). The
RoIAlign outputs of every candidate box are cached too (``acsl.engine.pooled_cache``), so a step reads
its sampled rows instead of pooling.

What may differ from training the same frozen detector on images: the maps are stored as float16 (the
proposals, computed in float32 before the cast, are exact), and so are the pooled rows (``pooled_dtype``).
With ``dtype=torch.float32`` the losses equal ``DetectorStep``'s to float precision
(``tests/test_proposal_cache.py``); float32 pooled rows change nothing further (``tests/test_pooled_cache.py``).

The maps of every (image, flip) are one row of a memory-mapped file; all images must resize to the same
padded size (true of the synthetic benchmark; a real dataset's images differ and train on images).
Size: (pairs) × Σ_levels C·H·W × 2 bytes, about 350 MB for ``quick``'s 1000 images at 128 px.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..config import TrainConfig
from ..data import collate_detection
from ..data.samplers import UniformSampler, occurrences
from ..io import atomic_write_json
from ..models import LongTailFasterRCNN
from ..models.sampling import SAMPLING_KEY, mix_seed
from .loader import visit_flip, visit_key
from .loop import StepOutput, TrainLoop, amp_settings
from .pooled_cache import PooledCache, PooledScalesDiffer, build_pooled_cache
from .roi_cache import CacheTooLargeError, check_cache_size
from .steps import freeze_all_but_classifier, set_train_mode
from .trainer import resolve_device

CACHE_FORMAT = 1
MAPS_NAME = "maps.bin"
META_NAME = "meta.json"
BOXES_NAME = "proposals_and_targets.pt"


def cache_identity(model: LongTailFasterRCNN, dataset: Any, dtype: torch.dtype) -> dict:
    """What a proposal cache depends on besides the pretrained weights (its directory is inside their
    run): the images, their flips, the resize, the RPN's training top-n and the storage type."""
    rpn = model.rpn
    return {"format": CACHE_FORMAT, "ann_file": str(dataset.ann_file), "images": len(dataset), "flips": bool(dataset.flips),
            "min_size": list(model.transform.min_size), "max_size": model.transform.max_size,
            "pre_nms_top_n": rpn._pre_nms_top_n["training"], "post_nms_top_n": rpn._post_nms_top_n["training"],
            "rpn_nms_thresh": rpn.nms_thresh, "levels": _pool_levels(model), "dtype": str(dtype).replace("torch.", "")}


def cache_dir_name(identity: dict) -> str:
    """``proposal_cache-<12 hex>``: one directory per images-and-settings, so the LVIS-style and the Open
    Images track's images (one pretrained start) keep their own caches side by side."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    return f"proposal_cache-{digest}"


def _pool_levels(model: LongTailFasterRCNN) -> list[str]:
    """The FPN levels the RoI pooler reads (the others, e.g. ``pool``, feed only the RPN); Cascade R-CNN's
    three stages share one pooler."""
    heads = model.roi_heads
    pool = heads.box_roi_pool if hasattr(heads, "box_roi_pool") else heads.stages[0].box_roi_pool
    return list(pool.featmap_names)


@dataclass
class ProposalCache:
    """FPN maps (memory-mapped, one row per (image, flip)), the RPN's training proposals, the resized
    targets and the image sizes of every (image, flip) of a training set. ``pooled_dtype``: the RoI heads
    train on RoIAlign's outputs rounded to it (None: as they are), read from ``pooled`` (every candidate
    box's, ``acsl.engine.pooled_cache``) or, when that could not be built, pooled and rounded each step."""

    root: Path
    maps: np.ndarray
    shapes: dict[str, tuple[int, int, int]]
    proposals: list[torch.Tensor]
    targets: list[dict[str, torch.Tensor]]
    image_sizes: list[tuple[int, int]]
    flips: bool
    pooled_dtype: torch.dtype | None = None
    pooled: PooledCache | None = None

    def pair(self, index: int, flip: bool) -> int:
        """The row of (image, flip)."""
        return 2 * index + int(flip) if self.flips else index

    def features(self, pairs: list[int], device: torch.device) -> dict[str, torch.Tensor]:
        """The FPN maps of ``pairs``, batched per level: {level: [B, C, H, W] float32}."""
        rows = torch.from_numpy(np.asarray(self.maps[np.asarray(pairs)], dtype=np.float32)).to(device)
        out, start = {}, 0
        for level, (c, h, w) in self.shapes.items():
            out[level] = rows[:, start:start + c * h * w].reshape(len(pairs), c, h, w)
            start += c * h * w
        return out

    def inputs(self, chunk: list[tuple[int, bool]], device: torch.device, maps: bool = True) -> tuple:
        """(FPN maps, proposals, resized targets, image sizes) of (image, flip) pairs, as the RoI heads take
        them; ``maps=False``: no maps (an empty dict), for heads that read pooled rows alone."""
        pairs = [self.pair(index, flip) for index, flip in chunk]
        return (self.features(pairs, device) if maps else {}, [self.proposals[p].to(device) for p in pairs],
                [{k: v.to(device) for k, v in self.targets[p].items()} for p in pairs],
                [self.image_sizes[p] for p in pairs])

    def pooled_features(self, chunk: list[tuple[int, bool]], device: torch.device, pool: Any,
                        features: dict[str, torch.Tensor], sizes: list[tuple[int, int]]) -> Any:
        """What the RoI heads take as ``pooled`` for (image, flip) pairs: their cached rows; without them,
        RoIAlign by ``pool`` on ``features`` rounded to ``pooled_dtype``, the same values (RoIAlign of a box
        depends on it and the maps alone); None (plain RoIAlign) when nothing is rounded."""
        if self.pooled is not None:
            return self.pooled.reader([self.pair(index, flip) for index, flip in chunk], device)
        if self.pooled_dtype in (None, torch.float32):
            return None
        return lambda sampled, boxes: pool(features, boxes, sizes).to(self.pooled_dtype).float()

    @classmethod
    def open(cls, root: str | Path) -> ProposalCache:
        root = Path(root)
        meta = json.loads((root / META_NAME).read_text())
        shapes = {level: tuple(shape) for level, shape in meta["shapes"].items()}
        width = sum(math.prod(shape) for shape in shapes.values())
        maps = np.memmap(root / MAPS_NAME, dtype=np.dtype(meta["dtype"]), mode="r", shape=(meta["pairs"], width))
        boxes = torch.load(root / BOXES_NAME, weights_only=True)
        return cls(root, maps, shapes, boxes["proposals"], boxes["targets"],
                   [tuple(size) for size in boxes["image_sizes"]], meta["flips"])


def _is_complete(root: Path, identity: dict) -> bool:
    meta_path = root / META_NAME
    if not (meta_path.is_file() and (root / BOXES_NAME).is_file() and (root / MAPS_NAME).is_file()):
        return False
    meta = json.loads(meta_path.read_text())
    return meta.get("identity") == identity


def estimate_cache_bytes(pairs: int, shapes: dict[str, tuple[int, int, int]], itemsize: int,
                         proposals_per_image: int) -> int:
    """Bytes of a proposal cache: the maps of every pair, plus its proposals (float32 boxes)."""
    return pairs * (sum(math.prod(s) for s in shapes.values()) * itemsize + proposals_per_image * 16)


@torch.no_grad()
def build_proposal_cache(
    model: LongTailFasterRCNN,
    dataset: Any,
    cache_root: str | Path,
    device: str | torch.device = "auto",
    batch_size: int = 8,
    progress: bool = True,
    dtype: torch.dtype = torch.float16,
    limit_gb: float | None = None,
    pooled_dtype: torch.dtype | None = torch.float16,
    after_fc6: bool = False,
) -> ProposalCache:
    """The proposal cache of ``model``'s frozen backbone, FPN and RPN over ``dataset`` (every image,
    unflipped and, when training flips, flipped), in ``cache_root/proposal_cache-<key>`` unless a complete
    one is there. Written into a sibling temporary directory and renamed, so an interrupted build leaves
    nothing that looks complete. Images that resize to different padded sizes raise a ``ValueError``.
    With ``pooled_dtype`` (None: none) the cache carries the pooled features of its candidate boxes in that
    type (``acsl.engine.pooled_cache``, built once); when they would not fit the disk or ``limit_gb``, it
    warns and the RoI heads pool from the maps, rounding to the same type (the same numbers, slower).
    ``after_fc6`` (a detector whose first box head keeps its first layer frozen): the rows are that layer's
    outputs in float32 instead (``acsl.engine.pooled_cache.fc6_features``), and the fallback pools unrounded."""
    device = resolve_device(device)
    identity = cache_identity(model, dataset, dtype)
    cache_dir = Path(cache_root) / cache_dir_name(identity)
    if not _is_complete(cache_dir, identity):
        _write_proposal_cache(model, dataset, cache_dir, identity, device, batch_size, progress, dtype, limit_gb)
    cache = ProposalCache.open(cache_dir)
    if pooled_dtype is None:
        return cache
    if after_fc6:
        pooled_dtype = torch.float32
    try:
        pooled = build_pooled_cache(model, cache, pooled_dtype, device, batch_size, progress, limit_gb, after_fc6)
    except (CacheTooLargeError, PooledScalesDiffer) as error:
        warnings.warn(f"no pooled RoI-feature cache: {error}; the RoI heads pool from the cached maps", stacklevel=2)
        pooled = None
    return replace(cache, pooled_dtype=pooled_dtype, pooled=pooled)


def _write_proposal_cache(model: LongTailFasterRCNN, dataset: Any, cache_dir: Path, identity: dict,
                          device: torch.device, batch_size: int, progress: bool, dtype: torch.dtype,
                          limit_gb: float | None) -> None:
    """Compute and write the proposal cache into ``cache_dir`` (through a temporary sibling)."""
    model.to(device)
    set_train_mode(model, stage=2)  # the RPN's training top-n; frozen batch norms
    levels = _pool_levels(model)
    flips = (False, True) if dataset.flips else (False,)
    pairs = [(index, flip) for index in range(len(dataset)) for flip in flips]
    staging = cache_dir.with_name(cache_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    proposals_out: list[torch.Tensor] = []
    targets_out: list[dict[str, torch.Tensor]] = []
    sizes_out: list[tuple[int, int]] = []
    shapes: dict[str, tuple[int, int, int]] | None = None
    started = time.perf_counter()
    try:  # an error (too large, mixed sizes, interrupted) leaves no half-written cache behind
        with open(staging / MAPS_NAME, "wb") as maps_file:
            chunks = range(0, len(pairs), batch_size)
            for start in tqdm(chunks, desc="caching FPN maps and proposals", disable=not progress, mininterval=2.0, leave=False):
                chunk = pairs[start:start + batch_size]
                images, targets = collate_detection([dataset.get(index, flip) for index, flip in chunk])
                images = [image.to(device) for image in images]
                targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
                # the RPN's own anchor draws (for its loss, unused here) come from a key, not the global stream
                with model.sampling_keys([mix_seed(0, index, int(flip)) for index, flip in chunk]):
                    image_list, targets = model.transform(images, targets)
                    features = model.backbone(image_list.tensors)
                    proposals, _ = model.rpn(image_list, features, targets)
                chunk_shapes = {level: tuple(features[level].shape[1:]) for level in levels}
                if shapes is None:
                    shapes = chunk_shapes
                    check_cache_size(estimate_cache_bytes(len(pairs), shapes, torch.finfo(dtype).bits // 8,
                                                          model.rpn._post_nms_top_n["training"]),
                                     staging, limit_gb, what="the FPN-map and proposal cache",
                                     hint="train stage 1 on images (DetectorConfig.frozen_rpn=False)")
                elif chunk_shapes != shapes:
                    raise ValueError(f"the proposal cache needs every image of {dataset.ann_file} at one padded size; "
                                     f"maps of {shapes} and {chunk_shapes} (images {chunk[0][0]}…): train stage 1 on "
                                     f"images instead (DetectorConfig.frozen_rpn=False)")
                rows = torch.cat([features[level].flatten(start_dim=1) for level in levels], dim=1)
                maps_file.write(rows.to(dtype).cpu().numpy().tobytes())
                proposals_out.extend(p.float().cpu() for p in proposals)
                targets_out.extend({k: v.cpu() for k, v in t.items()} for t in targets)
                sizes_out.extend(tuple(size) for size in image_list.image_sizes)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    torch.save({"proposals": proposals_out, "targets": targets_out, "image_sizes": sizes_out}, staging / BOXES_NAME)
    atomic_write_json(staging / META_NAME, {"identity": identity, "pairs": len(pairs), "flips": bool(dataset.flips),
                                            "dtype": str(np.dtype(str(dtype).replace("torch.", ""))),
                                            "shapes": {k: list(v) for k, v in (shapes or {}).items()},
                                            "build_s": time.perf_counter() - started})
    shutil.rmtree(cache_dir, ignore_errors=True)
    staging.rename(cache_dir)


class CachedRoIHeadStep:
    """``TrainLoop``'s step kind for a detector whose backbone, FPN and RPN are frozen: the RoI heads on the
    cached maps and proposals of a batch's images, with the sampler's image order, the per-epoch flips and
    visits and the sampling keys of ``DetectorStep`` (so the same RoIs are drawn). ``stage`` 1 trains the
    RoI heads; stage 2 (the decoupled stage) only the classifier's final layer, drawing new RoIs every
    epoch like the exact stage 2. One process."""

    collective = False

    def __init__(self, model: LongTailFasterRCNN, cache: ProposalCache, dataset: Any, sampler: UniformSampler,
                 batch_size: int, seed: int, device: torch.device, amp_dtype: torch.dtype, use_amp: bool,
                 stage: int = 1) -> None:
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 (RoI heads) or 2 (classifier only), got {stage}")
        self.stage, self.description = stage, f"stage {stage} (cached proposals)"
        trainable_below = [name for name, p in model.named_parameters()
                           if p.requires_grad and not name.startswith("roi_heads.")]
        if stage == 1 and trainable_below:
            raise ValueError(f"the cached fine-tune trains the RoI heads only, but {trainable_below[0]} (and "
                             f"{len(trainable_below) - 1} more) below them would train; freeze the backbone, FPN and RPN")
        model.to(device)
        self.model, self.cache, self.dataset, self.sampler = model, cache, dataset, sampler
        self.batch_size, self.seed, self.device = batch_size, seed, device
        self.use_amp, self.amp_dtype = use_amp, amp_dtype
        # pooled rows replace RoIAlign; Cascade R-CNN's later stages still pool their refined boxes from the maps
        self.maps = cache.pooled is None or hasattr(model.roi_heads, "stages")
        heads = model.roi_heads
        self.pool = heads.stages[0].box_roi_pool if hasattr(heads, "stages") else heads.box_roi_pool
        self.log_fields = {"cached_proposals": True, "cached_pooled": cache.pooled is not None}

    def parameters(self) -> list[torch.nn.Parameter]:
        if self.stage == 2:
            return freeze_all_but_classifier(self.model)
        return [p for p in self.model.parameters() if p.requires_grad]

    def start(self) -> None:
        pass

    def batches(self, epoch: int) -> list[list[tuple[int, bool, int]]]:
        """Each batch's (image, flip, sampling key), as ``DetectorStep``'s loader gives them."""
        set_train_mode(self.model, self.stage)
        order = self.sampler.epoch_indices(epoch)
        visits = occurrences(order)
        return [[(index, visit_flip(self.dataset, index, epoch, visit), visit_key(self.seed, epoch, index, visit))
                 for index, visit in zip(batch.tolist(), batch_visits.tolist())]
                for batch, batch_visits in zip(order.split(self.batch_size), visits.split(self.batch_size))]

    def run(self, batch: list[tuple[int, bool, int]]) -> StepOutput:
        chunk = [(index, flip) for index, flip, _ in batch]
        features, proposals, targets, sizes = self.cache.inputs(chunk, self.device, maps=self.maps)
        targets = [{**target, SAMPLING_KEY: torch.tensor(key)} for target, (_, _, key) in zip(targets, batch)]
        pooled = self.cache.pooled_features(chunk, self.device, self.pool, features, sizes)
        with self.model.sampling_keys([key for _, _, key in batch]):
            with torch.autocast(device_type=self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                _, losses = self.model.roi_heads(features, proposals, sizes, targets, pooled=pooled)
        loss = losses["loss_classifier"] if self.stage == 2 else sum(losses.values())
        return StepOutput(loss, losses, len(batch))


def train_on_proposal_cache(
    model: LongTailFasterRCNN,
    cache: ProposalCache,
    dataset: Any,
    config: TrainConfig,
    out_dir: str | Path,
    seed: int = 0,
    device: str | torch.device = "auto",
    amp: bool = True,
    progress: bool = True,
    sampler: UniformSampler | None = None,
    resume: bool = True,
    max_iters: int | None = None,
    stage: int = 1,
) -> Path:
    """``stage`` 1 (the RoI heads) or 2 (the classifier) of a detector with frozen backbone, FPN and RPN, on
    the cache: the same epochs, image order (``sampler``'s, default uniform), flips, RoI draws, lr schedule
    and clipping as ``train(..., stage=stage)``, in the same loop. Writes the whole detector's checkpoint
    and ``log.jsonl``."""
    if config.batch_size > len(dataset):
        raise ValueError(f"batch size {config.batch_size} is larger than the training set ({len(dataset)} images in "
                         f"{dataset.ann_file}); give a batch size of at most {len(dataset)}")
    device = resolve_device(device)
    use_amp, amp_dtype = amp_settings(device, amp)
    sampler = sampler or UniformSampler(len(dataset), seed)
    step = CachedRoIHeadStep(model, cache, dataset, sampler, config.batch_size, seed, device, amp_dtype, use_amp, stage)
    iters_per_epoch = math.ceil(sampler.nominal_length / config.batch_size)
    return TrainLoop(step, config, out_dir, iters_per_epoch, seed=seed, device=device, amp=amp, resume=resume,
                     progress=progress, max_iters=max_iters).run()
