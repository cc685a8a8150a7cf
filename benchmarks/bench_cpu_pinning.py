"""What pinning the CPU kernels costs: ``benchmarks/bench_train_step.py`` in fresh subprocesses, with and
without the pinned environment (``acsl.cpu_kernels.pinned_environment``), one thread each, alternately.

    python benchmarks/bench_cpu_pinning.py [--profile quick] [--repeats 3] [--iterations 8] [--eval-images 16]
                                           [--data-root data] [--mkl-compatible]

Each subprocess gets OMP_NUM_THREADS=MKL_NUM_THREADS=1 (as every kernel of ``acsl reproduce`` does); the
unpinned one has none of the pinning variables, so each library picks its own kernels. The configurations
alternate within each repeat, so a neighbour's load on a shared machine falls on both alike. Printed: ms per
training step on images, per cached step (what a stage-1 run trains with) and per evaluation batch, for
each repeat, then the medians and the ratio pinned / unpinned. ``--mkl-compatible`` adds the pins with
``MKL_CBWR=COMPATIBLE`` (MKL's one branch that is the same on Intel and AMD CPUs). docs/ARCHITECTURE.md,
"The same numbers on any machine", records the numbers.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

from acsl.cpu_kernels import SWITCH, VARIABLES, cpu_model, pinned_environment

STEP = Path(__file__).resolve().parent / "bench_train_step.py"
PATTERNS = {"step on images": r"^training step on images: (\d+(?:\.\d+)?) ms",
            "cached step": r"^training step on cached .*: (\d+(?:\.\d+)?) ms",
            "evaluation batch": r"^evaluation: (\d+(?:\.\d+)?) ms"}


def configurations(mkl_compatible: bool) -> dict[str, dict[str, str]]:
    """name → the environment of its subprocess."""
    base = {k: v for k, v in os.environ.items() if k not in VARIABLES and k != SWITCH}
    base.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    pins = pinned_environment()
    configs = {"unpinned": base, "pinned": {**base, **pins}}
    if mkl_compatible:
        configs["pinned, MKL COMPATIBLE"] = {**base, **pins, "MKL_CBWR": "COMPATIBLE"}
    return configs


def run_once(environment: dict[str, str], args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, str(STEP), "--profile", args.profile, "--iterations", str(args.iterations),
               "--eval-images", str(args.eval_images), "--data-root", args.data_root]
    done = subprocess.run(command, env=environment, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    found = {}
    for name, pattern in PATTERNS.items():
        match = re.search(pattern, done.stdout, re.MULTILINE)
        if match:
            found[name] = float(match.group(1))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--eval-images", type=int, default=16)
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--mkl-compatible", action="store_true", help="also time the pins with MKL_CBWR=COMPATIBLE")
    args = parser.parse_args()
    configs = configurations(args.mkl_compatible)
    print(f"CPU: {cpu_model()}; pins: {pinned_environment() or 'none on this architecture'}")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
    for repeat in range(args.repeats):
        order = list(configs) if repeat % 2 == 0 else list(reversed(configs))
        for name in order:
            results[name].append(run_once(configs[name], args))
            values = "  ".join(f"{k} {v:.0f} ms" for k, v in results[name][-1].items())
            print(f"repeat {repeat + 1} {name:<24}{values}", flush=True)
    print("\nmedian ms" + "".join(f"{name:>20}" for name in PATTERNS))
    medians = {name: {k: statistics.median(r[k] for r in runs if k in r) for k in PATTERNS if any(k in r for r in runs)}
               for name, runs in results.items()}
    for name, values in medians.items():
        print(f"{name:<24}" + "".join(f"{values.get(k, float('nan')):>20.0f}" for k in PATTERNS))
    for name in configs:
        if name != "unpinned":
            ratios = [medians[name][k] / medians["unpinned"][k] for k in PATTERNS if k in medians[name]]
            print(f"{name} / unpinned: " + ", ".join(f"{k} {r:.3f}" for k, r in zip(PATTERNS, ratios)))


if __name__ == "__main__":
    main()
