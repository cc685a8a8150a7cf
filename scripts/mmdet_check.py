"""The mmdet half of scripts/mmdet_check.sh (docs/ARCHITECTURE.md, "mmdet integration"): mmdet's Faster
R-CNN R50-FPN on the smoke synthetic benchmark for a bounded number of CPU iterations, first the softmax
baseline, then ACSL stage 2 from its last checkpoint, each evaluated by ``acsl.LVISMetric``. Prints the
losses over the iterations and the AP; writes them to ``<work dir>/summary.json``.

Run it with the mmdet venv's python from the repository root (the configs' data paths are relative to it):

    python scripts/mmdet_check.py [--work-dir build/mmdet_check] [--baseline-iters 60] [--stage2-iters 30]
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
    """A hook that keeps every training iteration's losses (``outputs`` of ``after_train_iter``)."""
    from mmengine.hooks import Hook

    class RecordLosses(Hook):
        priority = "LOWEST"

        def __init__(self) -> None:
            self.history: list[dict[str, float]] = []

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
            self.history.append({k: float(v) for k, v in (outputs or {}).items() if "loss" in k})

    return RecordLosses()


def _stage(config: Path, work_dir: Path, iters: int, load_from: str | None = None) -> dict:
    """Train ``config`` for ``iters`` iterations in ``work_dir``, then evaluate; losses, metrics, times."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(str(config))
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters + 1  # evaluated once, below, after the last iteration
    cfg.default_hooks.checkpoint.interval = iters
    if load_from is not None:
        cfg.load_from = load_from
    runner = Runner.from_cfg(cfg)
    recorder = _recorder()
    runner.register_hook(recorder)
    started = time.perf_counter()
    runner.train()
    trained = time.perf_counter()
    metrics = runner.val()
    return {"config": str(config), "iterations": iters, "losses": recorder.history,
            "metrics": {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()},
            "train_s": round(trained - started, 1), "eval_s": round(time.perf_counter() - trained, 1),
            "checkpoint": str(work_dir / f"iter_{iters}.pth")}


def _report(name: str, result: dict) -> None:
    losses = result["losses"]
    print(f"\n== {name}: {result['iterations']} iterations, {result['train_s']} s training, "
          f"{result['eval_s']} s evaluation ({result['config']})")
    keys = [k for k in ("loss", "loss_cls", "loss_bbox", "loss_rpn_cls", "loss_rpn_bbox") if k in losses[0]]
    print("iteration  " + "  ".join(f"{k:>13}" for k in keys))
    step = max(1, len(losses) // 10)
    for i in sorted(set(range(0, len(losses), step)) | {len(losses) - 1}):
        print(f"{i + 1:9d}  " + "  ".join(f"{losses[i][k]:13.4f}" for k in keys))
    window = max(1, min(5, len(losses) // 4))
    for k in ("loss", "loss_cls"):
        first = sum(x[k] for x in losses[:window]) / window
        last = sum(x[k] for x in losses[-window:]) / window
        print(f"{k}: mean of the first {window} iterations {first:.4f}, of the last {window} {last:.4f}")
    print("acsl.LVISMetric: " + ", ".join(f"{k.split('/')[-1]} {v:.4f}" if v is not None else f"{k} nan"
                                          for k, v in result["metrics"].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", default="build/mmdet_check")
    parser.add_argument("--baseline-iters", type=int, default=60)
    parser.add_argument("--stage2-iters", type=int, default=30)
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


if __name__ == "__main__":
    main()
