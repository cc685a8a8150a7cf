"""Calibrate the ``quick`` benchmark on its tuning draw with the softmax baseline alone (docs/ARCHITECTURE.md,
"Calibrating the benchmark").

It trains the baseline on ``quick-tuning`` (benchmark, pretrained start and training seed 3, never reported)
for fine-tunes of E × k epochs (lr ×0.1 for the last sixth: the schedule ``k``x of a 1x of E epochs, which is
also the 1x of a profile whose fine-tune is E × k epochs long) and prints mAP, APr, APc, APf, APr / APf and
the gain of each length over the one half as long. The two numbers the benchmark must meet at the chosen 1x
are 2x − 1x ≤ 3 mAP (a converged 1x, the paper: +1.1) and APr / APf ≤ 0.25 (the paper's 1x: 4.3 / 29.3 =
0.15). No other method runs here.

    python scripts/calibrate_benchmark.py --epochs 6 --multiples 1 2 4 --runs /tmp/calibration/runs --data /tmp/calibration/data
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from acsl.profiles import PROFILES
from acsl.runs import RunStore, baseline_spec

TUNING = "quick-tuning"


def data_variant(lookalike_fraction: float | None) -> str:
    """``quick-tuning``, or a tuning profile of its own (benchmark and start) with another look-alike fraction."""
    if lookalike_fraction is None:
        return TUNING
    base = PROFILES[TUNING]
    name = f"{TUNING}-look{lookalike_fraction}"
    PROFILES[name] = replace(base, name=name, data=replace(base.data, lookalike_fraction=lookalike_fraction))
    return name


def fine_tune_variant(epochs: int, lr: float | None = None, frozen_fc6: bool = False, base_name: str = TUNING) -> str:
    """A profile named after ``quick-tuning`` whose 1x fine-tune is ``epochs`` long (lr ×0.1 for the last
    sixth, stage 2 as long), sharing ``quick-tuning``'s benchmark and pretrained start."""
    base = PROFILES[base_name]
    name = f"{base_name}-e{epochs}" + (f"-lr{lr}" if lr else "") + ("-fc6" if frozen_fc6 else "")
    step = (epochs - max(1, epochs // 6),)
    stage1 = replace(base.stage1, epochs=epochs, lr_steps=step, lr=lr or base.stage1.lr)
    PROFILES[name] = replace(base, name=name, stage1=stage1, stage2=replace(base.stage2, epochs=epochs, lr_steps=step),
                             pretrain_profile=base_name, detector=replace(base.detector, frozen_fc6=frozen_fc6))
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, required=True, help="E: the shortest fine-tune, in epochs")
    parser.add_argument("--multiples", type=int, nargs="+", default=[1, 2], help="k: train E × k epochs for each")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--frozen-fc6", action="store_true")
    parser.add_argument("--lookalike", type=float, default=None)
    parser.add_argument("--runs", default="/tmp/calibration/runs")
    parser.add_argument("--data", default="/tmp/calibration/data")
    args = parser.parse_args()
    store = RunStore(args.runs, args.data, device="cpu", progress=False)
    seed = PROFILES[TUNING].benchmark_seed
    profile = fine_tune_variant(args.epochs, args.lr, args.frozen_fc6, data_variant(args.lookalike))
    rows = {}
    for k in sorted(args.multiples):
        m = store.metrics(baseline_spec(profile, schedule=k, seed=seed))["metrics"]
        rows[args.epochs * k] = m
        gain = f"  gain over {args.epochs * k // 2} epochs {m['AP'] - rows[args.epochs * k // 2]['AP']:+.2f}" \
            if args.epochs * k // 2 in rows else ""
        print(f"{args.epochs * k:3d} epochs (lr {args.lr or PROFILES[TUNING].stage1.lr})  mAP {m['AP']:.2f}  APr {m['APr']:.2f}  "
              f"APc {m['APc']:.2f}  APf {m['APf']:.2f}  APr/APf {m['APr'] / m['APf']:.3f}{gain}", flush=True)

if __name__ == "__main__":
    main()
