"""``acsl.LVISMetric``: acsl's LVIS box AP behind mmdet's metric interface (docs/ARCHITECTURE.md, "mmdet
integration" and "Evaluation rules"); registered in mmdet's ``METRICS`` under the scope ``acsl`` when
``acsl.integrations.mmdet`` is imported."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from mmdet.registry import METRICS as MMDET_METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from ..evaluation.lvis_eval import METRIC_NAMES, evaluate_lvis, load_lvis_gt
from .mmdet_scope import scoped

METRICS = scoped(MMDET_METRICS)


def lvis_detections(results: Sequence[dict], category_ids: Sequence[int]) -> list[dict]:
    """LVIS result dicts from ``LVISMetric.process``'s records: boxes [x1, y1, x2, y2] → [x, y, w, h] (in
    float64, as mmdet's ``results2json``), label k → ``category_ids[k]``."""
    ids = np.asarray(category_ids, dtype=np.int64)
    detections: list[dict] = []
    for result in results:
        boxes = np.asarray(result["bboxes"], dtype=np.float64).reshape(-1, 4)
        xywh = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]])
        labels = np.asarray(result["labels"], dtype=np.int64).reshape(-1)
        scores = np.asarray(result["scores"], dtype=np.float64).reshape(-1)
        image_id = result["img_id"]
        detections.extend({"image_id": image_id, "category_id": category, "bbox": box, "score": score}
                          for category, box, score in zip(ids[labels].tolist(), xywh.tolist(), scores.tolist()))
    return detections


def _numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


class LVISMetric(BaseMetric):
    """LVIS box AP by ``acsl.evaluation.evaluate_lvis`` (docs/ARCHITECTURE.md, "Evaluation rules"): at most
    ``max_dets`` detections per image, the federated rules, r/c/f groups from the file's ``frequency``.

    Reports ``bbox_AP``, ``bbox_AP50``, ``bbox_AP75``, ``bbox_APs``, ``bbox_APm``, ``bbox_APl``, ``bbox_APr``,
    ``bbox_APc``, ``bbox_APf`` (prefix ``lvis/``), as mmdet's ``LVISMetric`` does, unrounded fractions in
    [0, 1], −1 where no ground truth defines one (as mmdet's and lvis-api's report it; acsl's own records keep
    NaN). Every image of ``ann_file`` is evaluated; mmdet's label k
    is the k-th category of the file.
    """

    default_prefix = "lvis"

    def __init__(self, ann_file: str | os.PathLike, metric: str | Sequence[str] = "bbox", max_dets: int = 300,
                 collect_device: str = "cpu", prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        metrics = [metric] if isinstance(metric, str) else list(metric)
        if metrics != ["bbox"]:
            raise ValueError(f"acsl.LVISMetric evaluates boxes only (metric='bbox'), got {metric!r}")
        self.ann_file = str(ann_file)
        self.max_dets = int(max_dets)
        self.ground_truth = load_lvis_gt(self.ann_file)
        self.category_ids = [int(category["id"]) for category in self.ground_truth["categories"]]

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            prediction = sample["pred_instances"]
            self.results.append({"img_id": sample["img_id"], "bboxes": _numpy(prediction["bboxes"]),
                                 "scores": _numpy(prediction["scores"]), "labels": _numpy(prediction["labels"])})

    def compute_metrics(self, results: list) -> dict[str, float]:
        metrics = evaluate_lvis(self.ground_truth, lvis_detections(results, self.category_ids), self.max_dets)
        values = {f"bbox_{name}": -1.0 if math.isnan(metrics[name]) else float(metrics[name]) for name in METRIC_NAMES}
        MMLogger.get_current_instance().info(
            "acsl.LVISMetric (faster-coco-eval, federated rules): " + ", ".join(
                f"{name} {metrics[name]:.4f}" for name in METRIC_NAMES))
        return values


METRICS.register_module(name="LVISMetric", module=LVISMetric, force=True)
