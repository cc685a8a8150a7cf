"""Choose NorCal's γ for ``quick`` on its tuning draw (docs/ARCHITECTURE.md, "NorCal's γ").

NorCal's authors ship no tuned γ (their default, 0, is the plain softmax), and their paper chooses it on held-out
data. Here it is chosen on ``quick-tuning`` (benchmark, pretrained start and training seed 3, never reported):
the softmax baseline's 1x detector of that draw, evaluated with NorCal's calibrated scores at each γ of a grid
(no training: ``ExperimentSpec.trained_as``). The γ with the highest mAP is the one ``quick`` uses
(``Profile.loss_defaults["norcal"]``). No other method runs here, and no reported seed.

    python scripts/calibrate_norcal.py --runs /tmp/calibration/runs --data /tmp/calibration/data
"""

from __future__ import annotations

import argparse

from acsl.profiles import PROFILES
from acsl.runs import ExperimentSpec, RunStore

TUNING = "quick-tuning"
GAMMAS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gammas", type=float, nargs="+", default=list(GAMMAS))
    parser.add_argument("--runs", default="/tmp/calibration/runs")
    parser.add_argument("--data", default="/tmp/calibration/data")
    args = parser.parse_args()
    store = RunStore(args.runs, args.data, device="cpu", progress=False)
    seed = PROFILES[TUNING].benchmark_seed
    rows = {}
    for gamma in args.gammas:
        spec = ExperimentSpec(profile=TUNING, loss="norcal", loss_options=(("gamma", gamma),), seed=seed)
        rows[gamma] = m = store.metrics(spec)["metrics"]
        print(f"γ {gamma:.2f}  mAP {m['AP']:.2f}  APr {m['APr']:.2f}  APc {m['APc']:.2f}  APf {m['APf']:.2f}", flush=True)
    defined = [g for g in rows if rows[g]["AP"] == rows[g]["AP"]]  # NaN: no ground truth, no choice
    if not defined:
        raise SystemExit("no γ gave a defined mAP on the tuning draw")
    best = max(defined, key=lambda g: rows[g]["AP"])
    print(f"highest mAP at γ = {best} ({rows[best]['AP']:.2f}; γ = 0, the plain softmax: {rows.get(0.0, {}).get('AP', float('nan')):.2f})")


if __name__ == "__main__":
    main()
