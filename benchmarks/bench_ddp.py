"""Training throughput of the ``quick`` profile with 1 and with 2 processes on the CPU (gloo), in
images/s, the same number of iterations of the same total batch (8 images) each; printed as the
2-process rate's ratio to the 1-process rate.

    python benchmarks/bench_ddp.py [--iterations 30]

On a 2-core machine the two processes share the two cores that one process uses alone (torchrun
gives each process one thread), so a ratio near 1 is what to expect here; the point of data
parallelism is more devices, not more processes per core.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch


def worker(data_root: str, iterations: int, out: str) -> None:
    from acsl.data import LVISDetection
    from acsl.data.subset import FirstImages
    from acsl.engine import distributed, train
    from acsl.runs import profile_benchmark
    from acsl.losses import build_loss
    from acsl.models import build_detector
    from acsl.profiles import get_profile

    with distributed.process_group("cpu") as device:
        with distributed.main_process_first():
            bench = profile_benchmark("quick", data_root, progress=False)
        train_set = LVISDetection(bench.train_json, bench.train_images, train=True, hflip_prob=0.5)
        config = replace(get_profile("quick").stage1, epochs=1, log_every=10_000)
        torch.manual_seed(0)
        loss = build_loss("softmax_ce", train_set.num_classes, train_set.frequencies)
        model = build_detector(get_profile("quick").detector, train_set.num_classes, loss)
        stamps: list[float] = []
        train(model, FirstImages(train_set, iterations * config.batch_size), config, out, device=device,
              progress=False, resume=False, on_step=lambda _: stamps.append(time.perf_counter()))
        if distributed.is_main_process():
            rate = (len(stamps) - 3) * config.batch_size / (stamps[-1] - stamps[2])
            print(json.dumps({"processes": distributed.world_size(), "images_per_s": rate}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data-root", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.data_root, args.iterations, args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        rates = {}
        for processes in (1, 2):
            launcher = [sys.executable] if processes == 1 else [
                sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
            command = [*launcher, __file__, "--worker", "--iterations", str(args.iterations),
                       "--data-root", str(Path(tmp) / "data"), "--out", str(Path(tmp) / f"run{processes}")]
            finished = subprocess.run(command, capture_output=True, text=True, env={**os.environ})
            if finished.returncode != 0:
                raise SystemExit(f"{processes} process(es) failed:\n{finished.stderr[-3000:]}")
            record = json.loads(finished.stdout.strip().splitlines()[-1])
            rates[processes] = record["images_per_s"]
            print(f"{processes} process(es): {rates[processes]:.2f} images/s")
        print(f"2 processes / 1 process: {rates[2] / rates[1]:.2f}x  (quick profile, {args.iterations} iterations of "
              f"8 images, {os.cpu_count()} CPU cores)")


if __name__ == "__main__":
    main()
