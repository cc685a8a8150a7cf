"""A run's metrics from its detections: LVIS AP with the federated rules, or the Open Images challenge's AP@0.5
with its class hierarchy (docs/ARCHITECTURE.md, "Evaluation rules")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..evaluation import evaluate_lvis
from .spec import ExperimentSpec

#: The LVIS metrics a run's record keeps, in percent.
REPORTED_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf")


def score_detections(spec: ExperimentSpec, val_json: Path | dict, detections: list[dict]) -> tuple[dict, dict]:
    """(metrics in percent, per-class AP in percent): LVIS AP with the federated rules, or on the Open
    Images track the challenge's AP@0.5 with its class hierarchy (docs/ARCHITECTURE.md, "Evaluation rules").
    ``val_json``: the val file, or the ground truth itself (a subset run's)."""
    if spec.settings.track == "openimages":
        result = _evaluate_openimages(val_json, detections)
        metrics = {"AP50_OI": 100.0 * result["AP50"]}
    else:
        result = evaluate_lvis(val_json, detections)
        metrics = {name: 100.0 * result[name] for name in REPORTED_METRICS}
    return metrics, {str(k): 100.0 * v for k, v in result["per_class_AP"].items()}


def _evaluate_openimages(val_json: Path | dict, detections: list[dict]) -> dict[str, Any]:
    """The Open Images challenge metric on the track's val file, with its class hierarchy."""
    from ..data.hierarchy import ClassHierarchy
    from ..evaluation.openimages_eval import evaluate_openimages

    truth = val_json if isinstance(val_json, dict) else json.loads(Path(val_json).read_text())
    hierarchy = ClassHierarchy.from_category_json(truth.get("hierarchy", {}))
    # The multi-label detectors score every parent class themselves; expanding their detections as well
    # would add a duplicate parent box per object (the challenge's evaluator expands only the ground truth).
    return evaluate_openimages(truth, detections, hierarchy=hierarchy, expand_detections=False)
