"""Evaluating a cached stage 2 from cached val box-head features (docs/ARCHITECTURE.md, "How a run flows").

The decoupled stage 2 trains the final classification layer alone (paper §3.2; docs/ARCHITECTURE.md,
"The method, exactly"): the backbone, the RPN, the 2-FC box head and the box regressor stay the stage-1
parent's. So on the val set every stage-2 run of one parent sees the same proposals and the same box-head
features, and only the class scores differ. ``build_val_feature_cache`` runs the frozen detector once over
the val images, in eval mode and in ``predict``'s batches (padding, and so the features, depend on the
batch), and stores per image what the RoI heads' test path needs after the box head: the proposals, the
box-head features in float32, the transformed and the original image size. ``predict_from_val_cache``
then runs the model's own box predictor (its stage-2 classifier and its box regressor) on those features,
the model's ``postprocess_detections`` (the loss decides the test-time scores) and
``transform.postprocess``, and returns what ``predict`` returns: the same detections, to float rounding.

The cache is keyed by a digest of the weights it depends on (backbone, RPN, box head), the test-time
settings, the val images and the batch size, so a cache of another detector is rebuilt, never reused.
It is written into a hidden temporary sibling and renamed into place (a killed build leaves only a
temporary, removed when a store opens: ``acsl.io.remove_stale_temporaries``).

Size: proposals per image (the RPN's test-time top-n, 1000 at the paper's scale) × feature width (1024) ×
4 bytes, about 4 MiB per image: 20 GiB for LVIS v0.5's 5k val images. A cache above the free disk or the
limit (``limit_gb``, ``$ACSL_CACHE_LIMIT_GB``) is refused before anything is written, and
``predict_cached_stage2`` then evaluates with the whole detector instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision
from tqdm import tqdm

from ..data import LVISDetection, collate_detection
from ..io import atomic_write_json
from ..models import LongTailFasterRCNN
from ..models.roi_heads import LongTailRoIHeads
from .inference import image_detections, predict
from .roi_cache import CacheTooLargeError, check_cache_size
from .trainer import resolve_device

VAL_CACHE_FORMAT = 1
VAL_CACHE_NAME = "val_cache"
#: In a pretrained start's run directory: the val outputs of the box head's frozen first layer, shared by
#: every stage-1 fine-tune of that start.
VAL_FC6_CACHE_NAME = "val_cache-fc6"
FEATURES_NAME = "features.f32"
META_NAME = "meta.json"


@dataclass
class ValFeatureCache:
    """Per val image (dataset order): its proposals and box-head features (``offsets[index]``: first row,
    row count), its transformed and original size (``sizes[index]``: h, w, original h, original w); the
    batches of ``batch_size`` images it was computed in."""

    root: Path
    features: np.ndarray
    proposals: np.ndarray
    offsets: np.ndarray
    sizes: np.ndarray
    image_ids: list[int]
    batch_size: int
    after_fc6: bool = False  # the features are relu(fc6(·)): fc7 is applied when predicting

    @classmethod
    def open(cls, root: str | Path) -> ValFeatureCache:
        root = Path(root)
        meta = json.loads((root / META_NAME).read_text())
        shape = (meta["rows"], meta["dim"])
        features = (np.memmap(root / FEATURES_NAME, dtype=np.float32, mode="r", shape=shape) if meta["rows"]
                    else np.zeros(shape, dtype=np.float32))  # an empty file cannot be mapped
        return cls(root, features, np.load(root / "proposals.npy"), np.load(root / "offsets.npy"),
                   np.load(root / "sizes.npy"), list(np.load(root / "image_ids.npy").tolist()), meta["batch_size"],
                   meta.get("after") == "fc6")


def _check_faster_rcnn(model: LongTailFasterRCNN) -> None:
    if not isinstance(model.roi_heads, LongTailRoIHeads):
        raise ValueError("the val feature cache supports Faster R-CNN only; evaluate Cascade R-CNN with the whole "
                         "detector (its later heads see boxes refined by the heads before them)")


def frozen_weights_digest(model: LongTailFasterRCNN, after_fc6: bool = False) -> str:
    """SHA-256 of the weights the cached features depend on: backbone, RPN and box head (the classifier and
    the box regressor are applied afresh when predicting); ``after_fc6``: the box head's first layer only."""
    digest = hashlib.sha256()
    head = model.roi_heads.box_head.fc6 if after_fc6 else model.roi_heads.box_head
    for part, module in (("backbone", model.backbone), ("rpn", model.rpn), ("box_head", head)):
        for name, tensor in module.state_dict().items():
            digest.update(f"{part}.{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
            digest.update(tensor.detach().reshape(-1).cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def cache_key(model: LongTailFasterRCNN, val_set: LVISDetection, batch_size: int, device: torch.device,
              after_fc6: bool = False) -> dict:
    """What a val cache must match to be reused: weights, test-time settings, images, batches, device kind
    (and, for a cache of the box head's first layer, that it is one)."""
    transform, rpn = model.transform, model.rpn
    ids = json.dumps([int(i) for i in val_set.image_ids]).encode()
    key = {
        "format": VAL_CACHE_FORMAT, "weights": frozen_weights_digest(model, after_fc6), "ann_file": str(val_set.ann_file),
        "images": len(val_set), "image_ids_sha256": hashlib.sha256(ids).hexdigest(), "batch_size": batch_size,
        "device": device.type, "torch": torch.__version__, "torchvision": torchvision.__version__,
        "settings": {
            "transform": repr(transform), "size_divisible": transform.size_divisible,
            "fixed_size": transform.fixed_size, "rpn_pre_nms_top_n": rpn._pre_nms_top_n["testing"],
            "rpn_post_nms_top_n": rpn._post_nms_top_n["testing"], "rpn_nms_thresh": rpn.nms_thresh,
            "rpn_score_thresh": rpn.score_thresh, "rpn_min_size": rpn.min_size,
            "anchors": [rpn.anchor_generator.sizes, rpn.anchor_generator.aspect_ratios],
            "pool": repr(model.roi_heads.box_roi_pool),
        },
    }
    if after_fc6:
        key["after"] = "fc6"
    return json.loads(json.dumps(key))  # tuples as lists, as the stored meta reads back


def _is_complete(root: Path, expected: dict) -> bool:
    try:
        meta = json.loads((root / META_NAME).read_text())
    except (OSError, ValueError):
        return False
    return all(meta.get(k) == v for k, v in expected.items())


def estimate_val_cache_bytes(model: LongTailFasterRCNN, num_images: int) -> int:
    """Bytes of a val cache: float32 features and proposals of the RPN's test-time top-n per image (an
    upper bound) plus the per-image tables."""
    rows = num_images * model.rpn._post_nms_top_n["testing"]
    (classifier, *_) = model.classifiers
    return rows * (classifier.in_features + 4) * 4 + num_images * (16 + 32 + 8) + 4 * 128  # .npy headers


def frozen_box_features(model: LongTailFasterRCNN, images: list[torch.Tensor], after_fc6: bool = False):
    """(proposals, box-head features, transformed image sizes) of a batch: the eval-mode path of
    ``GeneralizedRCNN.forward`` and ``LongTailRoIHeads.forward`` up to the box predictor (``after_fc6``: up to
    the box head's first layer, relu(fc6(·)), as ``TwoMLPHead`` computes it)."""
    image_list, _ = model.transform(images)
    features = model.backbone(image_list.tensors)
    if isinstance(features, torch.Tensor):
        features = OrderedDict([("0", features)])
    proposals, _ = model.rpn(image_list, features)
    pooled = model.roi_heads.box_roi_pool(features, proposals, image_list.image_sizes)
    head = model.roi_heads.box_head
    hidden = torch.relu(head.fc6(pooled.flatten(start_dim=1))) if after_fc6 else head(pooled)
    return proposals, hidden, image_list.image_sizes


def _write_cache(model: LongTailFasterRCNN, val_set: LVISDetection, staging: Path, batch_size: int,
                 device: torch.device, progress: bool, after_fc6: bool = False) -> tuple[int, int]:
    """Write the cache's arrays into ``staging``; (rows, feature width)."""
    offsets = np.zeros((len(val_set), 2), dtype=np.int64)
    sizes = np.zeros((len(val_set), 4), dtype=np.int64)
    proposals_out = [np.zeros((0, 4), dtype=np.float32)]
    rows, dim = 0, model.classifiers[0].in_features
    with open(staging / FEATURES_NAME, "wb") as features_file:
        starts = range(0, len(val_set), batch_size)
        for start in tqdm(starts, desc="caching val box-head features", disable=not progress, mininterval=2.0,
                          leave=False):
            chunk = range(start, min(start + batch_size, len(val_set)))
            images, _ = collate_detection([val_set[i] for i in chunk])  # as predict reads them
            images = [image.to(device) for image in images]
            proposals, box_features, image_sizes = frozen_box_features(model, images, after_fc6)
            features_file.write(box_features.float().cpu().numpy().tobytes())
            for index, image_proposals, size, image in zip(chunk, proposals, image_sizes, images):
                offsets[index] = (rows, len(image_proposals))
                sizes[index] = (*size, *image.shape[-2:])
                rows += len(image_proposals)
                proposals_out.append(image_proposals.float().cpu().numpy())
    np.save(staging / "proposals.npy", np.concatenate(proposals_out))
    np.save(staging / "offsets.npy", offsets)
    np.save(staging / "sizes.npy", sizes)
    np.save(staging / "image_ids.npy", np.asarray(val_set.image_ids, dtype=np.int64))
    return rows, dim


@torch.no_grad()
def build_val_feature_cache(
    model: LongTailFasterRCNN,
    val_set: LVISDetection,
    cache_dir: str | Path,
    batch_size: int = 8,
    device: str | torch.device = "auto",
    progress: bool = True,
    limit_gb: float | None = None,
    after_fc6: bool = False,
) -> ValFeatureCache:
    """The val feature cache of ``model``'s frozen parts over ``val_set`` in ``cache_dir``, built unless a
    complete one with the same key (``cache_key``) is there. ``model`` is the stage-1 parent or any stage-2
    model of it (they share every weight the cache depends on); ``after_fc6``: the box head's first layer's
    outputs, which every stage-1 fine-tune of one pretrained start shares when that layer is frozen. A
    ``CacheTooLargeError`` comes before anything is written when the cache exceeds the free disk or ``limit_gb``."""
    _check_faster_rcnn(model)
    cache_dir, device = Path(cache_dir), resolve_device(device)
    model.to(device).eval()
    expected = cache_key(model, val_set, batch_size, device, after_fc6)
    if _is_complete(cache_dir, expected):
        return ValFeatureCache.open(cache_dir)
    estimate = estimate_val_cache_bytes(model, len(val_set))
    check_cache_size(estimate, cache_dir, limit_gb, what="the val feature cache",
                     hint="evaluate with the whole detector (predict), or use a --subset of the images")
    started = time.perf_counter()
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{cache_dir.name}.tmp-pid{os.getpid()}-", dir=cache_dir.parent))
    staging.chmod(cache_dir.parent.stat().st_mode & 0o777)  # mkdtemp's is 0700; the run dir's instead
    try:
        rows, dim = _write_cache(model, val_set, staging, batch_size, device, progress, after_fc6)
        atomic_write_json(staging / META_NAME, {**expected, "rows": rows, "dim": dim, "estimated_bytes": estimate,
                                                "build_s": time.perf_counter() - started})
        shutil.rmtree(cache_dir, ignore_errors=True)  # a stale cache of another detector
        try:
            os.rename(staging, cache_dir)
        except OSError:  # another process put its cache there meanwhile: the same one if its key matches
            if not _is_complete(cache_dir, expected):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ValFeatureCache.open(cache_dir)


@torch.no_grad()
def predict_from_val_cache(
    model: LongTailFasterRCNN,
    cache: ValFeatureCache,
    val_set: LVISDetection,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> list[dict]:
    """``predict(model, val_set, cache.batch_size)`` from the cache: ``model``'s box predictor (its
    classifier, its box regressor) on the cached features of each batch, then its own
    ``postprocess_detections`` and ``transform.postprocess``; LVIS-format detections in dataset order."""
    _check_faster_rcnn(model)
    if [int(i) for i in val_set.image_ids] != cache.image_ids:
        raise ValueError(f"the val feature cache at {cache.root} holds other images than the val set")
    device = resolve_device(device)
    model.to(device).eval()
    heads, detections = model.roi_heads, []
    starts = range(0, len(cache.image_ids), cache.batch_size)
    for start in tqdm(starts, desc="inference (val cache)", disable=not progress, mininterval=2.0, leave=False):
        chunk = range(start, min(start + cache.batch_size, len(cache.image_ids)))
        offsets, sizes = cache.offsets[chunk.start:chunk.stop], cache.sizes[chunk.start:chunk.stop].tolist()
        first, last = int(offsets[0, 0]), int(offsets[-1].sum())
        features = torch.from_numpy(np.array(cache.features[first:last])).to(device)
        proposals = list(torch.from_numpy(cache.proposals[first:last]).to(device).split(offsets[:, 1].tolist()))
        image_sizes = [(h, w) for h, w, _, _ in sizes]
        if cache.after_fc6:  # TwoMLPHead's second layer, on the cached first layer's outputs
            features = torch.relu(heads.box_head.fc7(features))
        class_logits, box_regression = heads.box_predictor(features)
        boxes, scores, labels = heads.postprocess_detections(class_logits, box_regression, proposals, image_sizes)
        outputs = [{"boxes": b, "scores": s, "labels": l} for b, s, l in zip(boxes, scores, labels)]
        outputs = model.transform.postprocess(outputs, image_sizes, [(h, w) for _, _, h, w in sizes])
        for index, output in zip(chunk, outputs):
            detections += image_detections(output, cache.image_ids[index], val_set.label_to_category_id)
    return detections


def predict_cached_stage2(
    model: LongTailFasterRCNN,
    val_set: LVISDetection,
    cache_dir: str | Path,
    batch_size: int = 8,
    device: str | torch.device = "auto",
    progress: bool = True,
    limit_gb: float | None = None,
    after_fc6: bool = False,
) -> tuple[list[dict], float]:
    """(detections, seconds spent on the cache): a cached stage-2 model's ``predict`` from the val cache in
    ``cache_dir`` (``after_fc6``: a stage-1 fine-tune's, from its start's cache of the box head's frozen first
    layer), built first when missing or stale (~0 s when reused). A cache that would be too large is named in
    a warning and the whole detector runs instead (0 s)."""
    started = time.perf_counter()
    try:
        cache = build_val_feature_cache(model, val_set, cache_dir, batch_size, device, progress, limit_gb, after_fc6)
    except CacheTooLargeError as error:
        warnings.warn(f"{error}; evaluating with the whole detector instead", RuntimeWarning, stacklevel=2)
        return predict(model, val_set, batch_size, device, progress), 0.0
    cache_s = time.perf_counter() - started
    return predict_from_val_cache(model, cache, val_set, device, progress), cache_s
