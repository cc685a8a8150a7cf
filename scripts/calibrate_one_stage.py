"""Calibrate the one-stage (RetinaNet) fine-tune of ``quick`` on its tuning draw with the focal loss alone
(docs/ARCHITECTURE.md, "A one-stage detector"), as ``scripts/calibrate_benchmark.py`` did for the two-stage one.

It fine-tunes the focal-loss RetinaNet on ``quick-tuning`` (benchmark, RetinaNet start and training seed 3, never
reported) for E epochs for each E given (lr ×0.1 for the last sixth) and prints mAP, APr, APc, APf and the gain of
each length over the one half as long: the shortest E whose doubling gains ≤ 3 mAP is a converged 1x. No other
loss runs here.

    python scripts/calibrate_one_stage.py --epochs 6 12 24 --runs /tmp/calibration/runs --data /tmp/calibration/data
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from acsl.profiles import PROFILES
from acsl.runs import ExperimentSpec, RunStore

TUNING = "quick-tuning"


def start_variant(pretrain_epochs: int | None) -> str:
    """``quick-tuning`` with a RetinaNet start of ``pretrain_epochs`` (lr ×0.1 for the last sixth; None: the profile's)."""
    if pretrain_epochs is None:
        return TUNING
    base = PROFILES[TUNING]
    name = f"{TUNING}-retina-start{pretrain_epochs}"
    start = replace(base.pretrain, epochs=pretrain_epochs, lr_steps=(pretrain_epochs - max(1, pretrain_epochs // 6),))
    PROFILES[name] = replace(base, name=name, one_stage_pretrain=start)
    return name


def one_stage_variant(epochs: int, lr: float | None, start: str) -> str:
    """``start`` whose one-stage fine-tune is ``epochs`` long, sharing its benchmark and pretrained start."""
    base = PROFILES[start]
    name = f"{start}-e{epochs}" + (f"-lr{lr}" if lr else "")
    fine_tune = replace(base.stage1, epochs=epochs, lr_steps=(epochs - max(1, epochs // 6),), lr=lr or base.stage1.lr)
    PROFILES[name] = replace(base, name=name, one_stage_fine_tune=fine_tune, pretrain_profile=start)
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, nargs="+", required=True)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--pretrain-epochs", type=int, default=None, help="the RetinaNet start's epochs")
    parser.add_argument("--runs", default="/tmp/calibration/runs")
    parser.add_argument("--data", default="/tmp/calibration/data")
    args = parser.parse_args()
    store = RunStore(args.runs, args.data, device="cpu", progress=False)
    seed = PROFILES[TUNING].benchmark_seed
    rows = {}
    for epochs in sorted(args.epochs):
        spec = ExperimentSpec(profile=one_stage_variant(epochs, args.lr, start_variant(args.pretrain_epochs)),
                              loss="dense_focal", seed=seed,
                              detector=(("architecture", "retinanet"),))
        record = store.metrics(spec)
        rows[epochs] = m = record["metrics"]
        gain = f"  gain over {epochs // 2} epochs {m['AP'] - rows[epochs // 2]['AP']:+.2f}" if epochs // 2 in rows else ""
        print(f"{epochs:3d} epochs  mAP {m['AP']:.2f}  APr {m['APr']:.2f}  APc {m['APc']:.2f}  APf {m['APf']:.2f}  "
              f"APr/APf {m['APr'] / m['APf']:.3f}  train {record.get('timing', {}).get('train_s', float('nan')):.0f} s{gain}",
              flush=True)


if __name__ == "__main__":
    main()
