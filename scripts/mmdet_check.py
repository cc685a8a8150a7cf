"""The mmdet half of scripts/mmdet_check.sh (docs/ARCHITECTURE.md, "mmdet integration"): mmdet's Faster
R-CNN R50-FPN on the smoke synthetic benchmark for a bounded number of CPU iterations, first the softmax
baseline, then ACSL stage 2 from its last checkpoint, each evaluated by ``acsl.LVISMetric``. Prints the
losses over the iterations and the AP; writes them to ``<work dir>/summary.json``. Exits with status 1
unless, in each stage, the loss fell (the mean of the last quarter of the iterations below that of the first)
and the AP is above 0 (``failures``).

Run it with the mmdet venv's python from the repository root (the configs' data paths are relative to it):

    python scripts/mmdet_check.py [--work-dir build/mmdet_check] [--baseline-iters 60] [--stage2-iters 40]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

CONFIGS = Path("configs/mmdet/smoke")


def _recorder():
    """A hook that keeps every training iteration's losses (``outputs`` of ``after_train_iter``) and the
    metrics of the evaluation that ends training."""
    from mmengine.hooks import Hook

    class Record(Hook):
        priority = "LOWEST"

        def __init__(self) -> None:
            self.history: list[dict[str, float]] = []
            self.metrics: dict = {}

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
            self.history.append({k: float(v) for k, v in (outputs or {}).items() if "loss" in k})

        def after_val_epoch(self, runner, metrics=None) -> None:
            self.metrics = dict(metrics or {})

    return Record()


def _stage(config: Path, work_dir: Path, iters: int, load_from: str | None = None) -> dict:
    """Train ``config`` for ``iters`` iterations in ``work_dir``, then evaluate; losses, metrics, times."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(str(config))
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters  # evaluated once, after the last iteration
    cfg.default_hooks.checkpoint.interval = iters
    if load_from is not None:
        cfg.load_from = load_from
    runner = Runner.from_cfg(cfg)
    recorder = _recorder()
    runner.register_hook(recorder)
    started = time.perf_counter()
    runner.train()  # training, then the evaluation
    return {"config": str(config), "iterations": iters, "losses": recorder.history,
            "metrics": {k.split("/")[-1]: (None if isinstance(v, float) and math.isnan(v) else v)
                        for k, v in recorder.metrics.items()},
            "seconds": round(time.perf_counter() - started, 1), "checkpoint": str(work_dir / f"iter_{iters}.pth")}


def _report(name: str, result: dict) -> None:
    losses = result["losses"]
    print(f"\n== {name}: {result['iterations']} iterations and the evaluation in {result['seconds']} s "
          f"({result['config']})")
    keys = [k for k in ("loss", "loss_cls", "loss_bbox", "loss_rpn_cls", "loss_rpn_bbox") if k in losses[0]]
    print("iteration  " + "  ".join(f"{k:>13}" for k in keys))
    for i, record in enumerate(losses):
        print(f"{i + 1:9d}  " + "  ".join(f"{record[k]:13.4f}" for k in keys))
    quarter = max(1, len(losses) // 4)  # single iterations are noisy: 2 images each
    means = [{k: sum(x[k] for x in part) / len(part) for k in keys}
             for part in (losses[j:j + quarter] for j in range(0, len(losses), quarter)) if part]
    for k in keys:
        print(f"{k}: means over successive {quarter}-iteration windows " + " → ".join(f"{m[k]:.4f}" for m in means))
    print("acsl.LVISMetric: " + ", ".join(f"{k} {'nan' if v is None else f'{v:.4f}'}"
                                          for k, v in result["metrics"].items()))


def failures(name: str, result: dict, loss: str) -> list[str]:
    """What makes a stage fail the check: ``loss`` not lower over the last quarter of the iterations than over
    the first, or an AP that is not above 0 (undefined: −1 or None)."""
    losses = [record[loss] for record in result["losses"] if loss in record]
    quarter = max(1, len(losses) // 4)
    problems = []
    if len(losses) < 2:
        problems.append(f"{name}: {len(losses)} logged values of {loss}, too few to see it fall")
    else:
        first, last = (sum(part) / len(part) for part in (losses[:quarter], losses[-quarter:]))
        if not last < first:
            problems.append(f"{name}: {loss} did not fall ({first:.4f} over the first {quarter} iterations, "
                            f"{last:.4f} over the last {quarter})")
    ap = result["metrics"].get("bbox_AP")
    if ap is None or not ap > 0:
        problems.append(f"{name}: bbox_AP is {ap}, not above 0")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", default="build/mmdet_check")
    parser.add_argument("--baseline-iters", type=int, default=60)
    parser.add_argument("--stage2-iters", type=int, default=40)
    args = parser.parse_args()
    # mmengine's checkpoints hold more than tensors; torch >= 2.6 loads weights only unless told otherwise.
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    work = Path(args.work_dir)
    started = time.perf_counter()
    baseline = _stage(CONFIGS / "faster-rcnn_r50_fpn_softmax_smoke.py", work / "softmax", args.baseline_iters)
    _report("stage 1, softmax baseline", baseline)
    stage2 = _stage(CONFIGS / "faster-rcnn_r50_fpn_acsl-stage2_smoke.py", work / "acsl_stage2", args.stage2_iters,
                    load_from=baseline["checkpoint"])
    _report("stage 2, ACSL (xi = 0.7), classifier only", stage2)
    summary = {"baseline": baseline, "acsl_stage2": stage2, "total_s": round(time.perf_counter() - started, 1)}
    (work / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"\nmmdet check done in {summary['total_s']} s; {work / 'summary.json'}")
    problems = failures("stage 1", baseline, "loss") + failures("stage 2", stage2, "loss_cls")
    for problem in problems:
        print(f"FAILED {problem}")
    if problems:
        raise SystemExit(1)
    print("passed: the loss fell and the AP is above 0 in both stages")


if __name__ == "__main__":
    main()
