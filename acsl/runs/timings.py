"""Where a report's time went: the stored runs' wall times summed by stage (the index page's table).

Each run directory keeps ``timing.json`` (``train_s``, the fast stage 2's ``cache_s`` and ``val_cache_s``,
``eval_s``) and is named after its spec, whose name carries ``stage0`` (the pretrained start), ``stage1``
or ``stage2`` (``acsl.runs.spec.ExperimentSpec.name``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

STAGE_NAMES = {"0": "pretrained start (stage 0)", "1": "stage 1", "2": "stage 2"}
_STAGE = re.compile(r"_stage([012])_")


def stage_times(run_store: str | Path) -> dict[str, float]:
    """Seconds of training per stage, of the fast stage 2's feature caches and of evaluation, over every run
    in ``run_store`` (the whole store: from an empty store, the time of what was run into it)."""
    totals = {name: 0.0 for name in (*STAGE_NAMES.values(), "feature caches", "evaluation")}
    root = Path(run_store)
    for timing_file in sorted(root.glob("*/timing.json")) if root.is_dir() else []:
        match = _STAGE.search(timing_file.parent.name)
        try:
            timing = json.loads(timing_file.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # a run being written: its time is not final
        if match:
            totals[STAGE_NAMES[match.group(1)]] += float(timing.get("train_s", 0.0))
        totals["feature caches"] += float(timing.get("cache_s", 0.0)) + float(timing.get("val_cache_s", 0.0))
        totals["evaluation"] += float(timing.get("eval_s", 0.0))
    return {name: round(seconds, 1) for name, seconds in totals.items()}
