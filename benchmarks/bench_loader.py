"""Training throughput of the ``quick`` profile's stage 1 with 0, 1 and 2 ``DataLoader`` workers on this
machine, in images/s over the same iterations of the same batches (8 images), printed as ratios against
0 workers (images loaded in the training process) measured in the same process.

    python benchmarks/bench_loader.py [--iterations 24] [--repeats 2]

Each setting trains a freshly initialised detector (same seed) on the first ``iterations`` × 8 training
images; the first 2 iterations are left out of the rate (worker start-up, first-touch allocations). The
settings run in turn ``repeats`` times and each keeps its best rate, so a slow moment of the machine
does not decide the ranking.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from acsl.data import LVISDetection
from acsl.data.subset import FirstImages
from acsl.engine import train
from acsl.losses import build_loss
from acsl.models import build_detector
from acsl.profiles import get_profile
from acsl.runs import profile_benchmark

SKIPPED = 2


def images_per_s(train_set: LVISDetection, iterations: int, workers: int, out: Path) -> float:
    """Stage-1 images/s of the quick detector with ``workers`` loader workers."""
    profile = get_profile("quick")
    config = replace(profile.stage1, epochs=1, log_every=10_000)
    torch.manual_seed(0)
    loss = build_loss("softmax_ce", train_set.num_classes, train_set.frequencies)
    model = build_detector(profile.detector, train_set.num_classes, loss)
    stamps: list[float] = []
    train(model, FirstImages(train_set, iterations * config.batch_size), config, out, device="cpu", progress=False,
          resume=False, workers=workers, on_step=lambda _: stamps.append(time.perf_counter()))
    return (len(stamps) - 1 - SKIPPED) * config.batch_size / (stamps[-1] - stamps[SKIPPED])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    if args.iterations <= SKIPPED + 1:
        parser.error(f"--iterations must be > {SKIPPED + 1}")
    with tempfile.TemporaryDirectory() as tmp:
        bench = profile_benchmark("quick", Path(tmp) / "data", progress=False)
        train_set = LVISDetection(bench.train_json, bench.train_images, train=True, hflip_prob=0.5)
        best = {workers: 0.0 for workers in args.workers}
        for _ in range(args.repeats):
            for workers in args.workers:
                best[workers] = max(best[workers], images_per_s(train_set, args.iterations, workers, Path(tmp) / "run"))
    baseline = best[args.workers[0]]
    print(f"quick stage 1, batch 8, {args.iterations} iterations, torch threads {torch.get_num_threads()}")
    print(f"{'workers':>8} {'images/s':>9} {'ratio':>6}")
    for workers, rate in best.items():
        print(f"{workers:>8} {rate:>9.2f} {rate / baseline:>6.2f}")


if __name__ == "__main__":
    main()
