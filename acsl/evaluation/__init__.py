"""Evaluation: LVIS AP with the federated rules (DESIGN §6)."""

from acsl.evaluation.lvis_eval import (
    LVIS_AREA_RANGES,
    METRIC_NAMES,
    cap_detections_per_image,
    evaluate_lvis,
    load_lvis_gt,
)

__all__ = [
    "LVIS_AREA_RANGES",
    "METRIC_NAMES",
    "cap_detections_per_image",
    "evaluate_lvis",
    "load_lvis_gt",
]
