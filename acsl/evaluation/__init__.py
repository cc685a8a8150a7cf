"""Evaluation: LVIS AP with the federated rules (docs/ARCHITECTURE.md, "Evaluation rules")."""

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
