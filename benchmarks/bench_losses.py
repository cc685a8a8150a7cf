"""Forward + backward time of each classification loss against torch's
``binary_cross_entropy_with_logits`` on N = 8192 RoIs × 1231 columns (LVIS v0.5: 1230 classes +
background), measured in one process and printed as ratios (issue target: ACSL ≤ 1.3×). Every registered
loss is timed, with the LVIS v0.5 train statistics for those that use counts; Seesaw and BAGS get their
extra columns (objectness, "others") on top of the 1231.

    python benchmarks/bench_losses.py [--rois 8192] [--columns 1231] [--repeats 20] [--device cpu] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from acsl.data import load_category_stats
from acsl.losses import LOSSES, build_loss


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _paired_times(reference, candidate, repeats: int, device: torch.device) -> tuple[float, float, float]:
    """Median time of ``reference`` and ``candidate`` and the median of their per-pair ratios; the two
    run alternately so that drifts of the machine affect both alike."""
    for _ in range(3):
        reference()
        candidate()
    ref_times, cand_times = [], []
    for _ in range(repeats):
        for fn, times in ((reference, ref_times), (candidate, cand_times)):
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - start)
    ratios = [c / r for r, c in zip(ref_times, cand_times)]
    return statistics.median(ref_times), statistics.median(cand_times), statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rois", type=int, default=8192)
    parser.add_argument("--columns", type=int, default=1231)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    num_classes = args.columns - 1

    stats = load_category_stats("lvis_v0.5")
    pad = num_classes - min(num_classes, len(stats))
    frequencies = list(stats["frequency"])[:num_classes] + ["r"] * pad
    image_counts = list(stats["image_count"])[:num_classes] + [1] * pad
    instance_counts = list(stats["instance_count"])[:num_classes] + [1] * pad
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(args.rois, args.columns, generator=g) * 3).to(device).requires_grad_(True)
    labels = torch.randint(1, args.columns, (args.rois,), generator=g)
    labels[torch.rand(args.rois, generator=g) < 0.75] = 0  # 25 % foreground, as the RoI sampler gives
    labels = labels.to(device)

    def reference():
        targets = torch.zeros_like(logits, requires_grad=False).scatter_(1, labels.unsqueeze(1), 1.0)
        loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / args.rois
        loss.backward()
        logits.grad = None

    print(f"device {device}, N = {args.rois} RoIs x {args.columns} columns, median of {args.repeats} "
          "alternating pairs; ratio = median of per-pair ratios against binary_cross_entropy_with_logits")
    variants = [(name, {}) for name in sorted(LOSSES) if name != "acsl"]
    variants += [("acsl", {"xi": 0.7}), ("acsl", {"xi": 0.7, "statistic_free": True})]
    for name, options in variants:
        loss_fn = build_loss(name, num_classes, frequencies, class_image_counts=image_counts,
                             class_instance_counts=instance_counts, num_images=57_000, **options).to(device)

        # Seesaw (objectness) and BAGS ("others") train a few more columns than C + 1.
        inputs = logits
        if loss_fn.num_logits != args.columns:
            extra = torch.randn(args.rois, loss_fn.num_logits - args.columns, generator=g) * 3
            inputs = torch.cat([logits.detach(), extra.to(device)], dim=1).requires_grad_(True)

        def run(inputs=inputs, loss_fn=loss_fn):
            loss_fn(inputs, labels).backward()
            inputs.grad = None

        ref_s, seconds, ratio = _paired_times(reference, run, args.repeats, device)
        label = name + "".join(f" {k}={v}" for k, v in options.items())
        print(f"{label:36s} {seconds * 1e3:8.2f} ms  (reference {ref_s * 1e3:7.2f} ms)   {ratio:.2f}x")


if __name__ == "__main__":
    main()
