"""Evaluating stage-1 fine-tunes from their start's val outputs of the frozen fc6 (``acsl.engine.val_cache``,
``after_fc6``) against the whole detector, on the runs of a finished quick report: for each stage-1 Faster R-CNN
run found in the store, the metrics from the cache (equal to the stored ones, which the whole detector gave,
or not), and the time of both, as a ratio. Run it in the report's pinned kernels, as the report evaluates:

    env $(python -c "from acsl.cpu_kernels import pinned_environment as p; print(' '.join(f'{k}={v!r}' for k, v in p().items()))") \\
        OMP_NUM_THREADS=1 python benchmarks/bench_stage1_val_cache.py --run-store runs --data-root data

The stored ``eval_s`` is the baseline (measured by the report itself); each start's cache is built once, into a
temporary folder, and its build time printed apart.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from acsl.cpu_kernels import pinned_environment
from acsl.engine import load_checkpoint
from acsl.engine.val_cache import predict_cached_stage2
from acsl.models.classifiers import apply_stage2_classifier
from acsl.runs import RunStore, baseline_spec, method_spec
from acsl.runs.datasets import evaluation_truth
from acsl.runs.store import build_model, score_detections


def candidate_specs() -> list:
    """The stage-1 Faster R-CNN runs of a quick report (those present are measured)."""
    specs = [baseline_spec("quick", seed=s, schedule=k) for s in (0, 1, 2) for k in (1, 2, 4)]
    specs += [method_spec("quick", m) for m in ("Focal Loss", "CBL", "LDAM", "RFS", "EQL", "EQLv2", "Federated loss")]
    specs += [baseline_spec("oi-quick", seed=s) for s in (0, 1, 2)]
    specs += [method_spec("oi-quick", m, seed=s) for m in ("Class Aware Sampling", "Equalization Loss") for s in (0, 1, 2)]
    specs += [baseline_spec("oi-quick", detector={"backbone": b}) for b in ("narrow_resnet_deep", "narrow_resnet_deeper")]
    return specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-store", default="runs")
    parser.add_argument("--data-root", default="data")
    args = parser.parse_args()
    torch.set_num_threads(1)
    store = RunStore(args.run_store, data_root=args.data_root, device="cpu", progress=False)
    specs = [s for s in candidate_specs() if (store.run_dir(s) / "metrics.json").is_file()]
    if not specs:
        raise SystemExit(f"no stage-1 run of a quick report in {args.run_store}: run `acsl reproduce` first")
    caches, equal, whole, cached = Path(tempfile.mkdtemp()), 0, 0.0, 0.0
    print(f"{'run':62}{'equal':>7}{'whole s':>9}{'cached s':>10}{'ratio':>7}{'cache build s':>15}")
    for spec in specs:
        run_dir = store.run_dir(spec)
        stored = json.loads((run_dir / "metrics.json").read_text())["metrics"]
        baseline_s = json.loads((run_dir / "timing.json").read_text())["eval_s"]
        train_set, val_set, val_json = store.datasets(spec)
        model = build_model(spec, train_set)
        apply_stage2_classifier(model, spec.classifier)
        model.load_state_dict(load_checkpoint(run_dir / "checkpoint.pt")["model"])
        started = time.perf_counter()
        detections, build_s = predict_cached_stage2(model, val_set, caches / store.run_dir(spec.parent).name,
                                                    spec.settings.eval_batch_size, "cpu", False, None, after_fc6=True)
        metrics, _ = score_detections(spec, evaluation_truth(val_set, val_json), detections)
        seconds = time.perf_counter() - started - build_s
        same = all((math.isnan(v) and math.isnan(stored[k])) or v == stored[k] for k, v in metrics.items())
        equal, whole, cached = equal + same, whole + baseline_s, cached + seconds
        print(f"{spec.name:62}{str(same):>7}{baseline_s:9.1f}{seconds:10.1f}{seconds / baseline_s:7.2f}{build_s:15.1f}")
    print(f"{equal} of {len(specs)} runs give the stored metrics to the last bit; evaluation {whole:.0f} s → {cached:.0f} s "
          f"({cached / whole:.2f}×), plus the caches' builds")


#: Set in the process this script starts again with the pins (they must be there before torch loads).
PINNED_MARK = "ACSL_BENCH_PINNED"

if __name__ == "__main__":
    if os.environ.get(PINNED_MARK) != "1":
        env = {**os.environ, **pinned_environment(), "OMP_NUM_THREADS": "1", PINNED_MARK: "1"}
        raise SystemExit(subprocess.call([sys.executable, *sys.argv], env=env))
    main()
