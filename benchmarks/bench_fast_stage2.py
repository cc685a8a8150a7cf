"""The fast decoupled stage 2 (cached box-head features, ``acsl.engine.roi_cache``) against the exact
one, on the same stage-1 detector, in one process: training time per ξ and the AP difference.

    python benchmarks/bench_fast_stage2.py [--profile quick] [--xis 0.3 0.7] [--run-store runs]

The stage-1 softmax baseline comes from ``--run-store`` (trained there first if missing); both stage
2 variants are trained afresh in a temporary store that holds a copy of it, so each time below is
measured here. The cache is built once for all ξ; its time is shown apart and spread over the ξ values.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from acsl.runs import RunStore, baseline_spec, decoupled_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--xis", type=float, nargs="+", default=[0.3, 0.7])
    parser.add_argument("--run-store", default="runs")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    parent = baseline_spec(args.profile)
    source = RunStore(args.run_store, data_root=args.data_root, device=args.device, progress=False)
    source.checkpoint(parent)
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp) / "runs", data_root=args.data_root, device=args.device, progress=False)
        shutil.copytree(source.run_dir(parent), store.run_dir(parent),
                        ignore=shutil.ignore_patterns("roi_cache*", "val_cache*"))
        rows = []
        for xi in args.xis:
            exact = store.metrics(decoupled_spec(args.profile, "acsl", xi=xi))
            fast = store.metrics(decoupled_spec(args.profile, "acsl", cached=True, xi=xi))
            rows.append((xi, exact, fast))
    cache_s = sum(fast["timing"].get("cache_s", 0.0) for _, _, fast in rows)
    print(f"profile {args.profile}, ACSL stage 2 on one stage-1 detector; RoI feature cache built once in {cache_s:.1f} s")
    print(f"{'xi':>5} {'exact train s':>14} {'cached train s':>15} {'+ cache share':>14} {'speed-up':>9}"
          f" {'AP exact':>9} {'AP cached':>10} {'ΔAP':>6} {'ΔAPr':>6} {'ΔAPf':>6}")
    for xi, exact, fast in rows:
        exact_s = exact["timing"]["train_s"]
        fast_s = fast["timing"]["train_s"] + cache_s / len(rows)
        e, f = exact["metrics"], fast["metrics"]
        print(f"{xi:>5g} {exact_s:>14.1f} {fast['timing']['train_s']:>15.1f} {fast_s:>14.1f} {exact_s / fast_s:>8.1f}x"
              f" {e['AP']:>9.2f} {f['AP']:>10.2f} {f['AP'] - e['AP']:>+6.2f} {f['APr'] - e['APr']:>+6.2f}"
              f" {f['APf'] - e['APf']:>+6.2f}")


if __name__ == "__main__":
    main()
