"""Forward + backward time of each classification loss against torch's
``binary_cross_entropy_with_logits`` on N = 8192 RoIs × 1231 columns (LVIS v0.5: 1230 classes +
background), measured in one process and printed as ratios (issue target: ACSL ≤ 1.3×).

    python benchmarks/bench_losses.py [--rois 8192] [--columns 1231] [--repeats 20] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from acsl.data import load_category_stats
from acsl.losses import build_loss


def _time(fn, repeats: int, device: torch.device) -> float:
    for _ in range(3):
        fn()
    samples = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rois", type=int, default=8192)
    parser.add_argument("--columns", type=int, default=1231)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    num_classes = args.columns - 1

    frequencies = list(load_category_stats("lvis_v0.5")["frequency"])[:num_classes]
    frequencies += ["r"] * (num_classes - len(frequencies))
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(args.rois, args.columns, generator=g) * 3).to(device).requires_grad_(True)
    labels = torch.randint(1, args.columns, (args.rois,), generator=g)
    labels[torch.rand(args.rois, generator=g) < 0.75] = 0  # 25 % foreground, as the RoI sampler gives
    labels = labels.to(device)

    def reference():
        targets = F.one_hot(labels, args.columns).to(logits.dtype)
        loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / args.rois
        loss.backward()
        logits.grad = None

    baseline = _time(reference, args.repeats, device)
    print(f"device {device}, N = {args.rois} RoIs x {args.columns} columns, median of {args.repeats}")
    print(f"{'binary_cross_entropy_with_logits':36s} {baseline * 1e3:8.2f} ms   1.00x")
    for name, options in (("bce", {}), ("softmax_ce", {}), ("acsl", {"xi": 0.7}),
                          ("acsl", {"xi": 0.7, "statistic_free": True})):
        loss_fn = build_loss(name, num_classes, frequencies, **options).to(device)

        def run():
            loss_fn(logits, labels).backward()
            logits.grad = None

        seconds = _time(run, args.repeats, device)
        label = name + "".join(f" {k}={v}" for k, v in options.items())
        print(f"{label:36s} {seconds * 1e3:8.2f} ms   {seconds / baseline:.2f}x")


if __name__ == "__main__":
    main()
