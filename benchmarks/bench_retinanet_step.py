"""Training-step time of acsl's RetinaNet (``acsl.models.retinanet``) against the Faster R-CNN of the same
profile, on the same batches of the profile's training images, in one process, printed as ratios: the whole
detector (a pretrained start's step), a step with frozen backbone and FPN (RetinaNet: both subnets train; Faster
R-CNN: RPN and RoI heads), and the fine-tune's, with the RPN and RetinaNet's box subnet frozen too (RetinaNet: the
classification subnet alone; Faster R-CNN: the RoI heads, on images, not on the report's cached features). It sizes the one-stage
part of the beyond-the-paper report (docs/ARCHITECTURE.md, "A one-stage detector").

    python benchmarks/bench_retinanet_step.py [--profile quick] [--iterations 10] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch

from acsl.data import collate_detection
from acsl.losses import build_loss
from acsl.losses.dense import DenseFocalLoss
from acsl.models import build_detector
from acsl.models.retinanet import build_retinanet
from acsl.profiles import get_profile
from acsl.runs import baseline_spec, load_datasets


def _models(profile: str, num_classes: int, frozen: bool, frozen_box: bool):
    config = replace(get_profile(profile).detector, frozen_backbone=frozen, frozen_rpn=frozen_box, frozen_fc6=False,
                     frozen_norm=frozen)
    torch.manual_seed(0)
    faster = build_detector(config, num_classes, build_loss("softmax_ce", num_classes))
    torch.manual_seed(0)
    retina = build_retinanet(config, num_classes, DenseFocalLoss(num_classes))
    return faster.train(), retina.train()


def _step_time(model, batches) -> float:
    """Seconds per step (forward, backward, SGD update) over ``batches``, after one warm-up step."""
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def step(images, targets):
        optimizer.zero_grad()
        sum(model(images, targets).values()).backward()
        optimizer.step()

    step(*batches[0])
    start = time.perf_counter()
    for images, targets in batches:
        step(images, targets)
    return (time.perf_counter() - start) / len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-root", default="data")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = get_profile(args.profile)
    train_set, _, _ = load_datasets(baseline_spec(args.profile), args.data_root)
    batch = settings.stage1.batch_size
    batches = [collate_detection([train_set[(i * batch + j) % len(train_set)] for j in range(batch)])
               for i in range(args.iterations)]
    batches = [([image for image in images], [{k: t[k] for k in ("boxes", "labels")} for t in targets])
               for images, targets in batches]
    print(f"{args.profile}: batch {batch}, {args.iterations} steps × {args.repeats} repeats, {args.threads} thread(s)")
    for frozen, frozen_box, what in ((False, False, "whole detector (a pretrained start)"),
                                     (True, False, "frozen backbone and FPN"),
                                     (True, True, "... and RPN / box subnet (the fine-tune)")):
        faster, retina = _models(args.profile, train_set.num_classes, frozen, frozen_box)
        pairs = [(_step_time(faster, batches), _step_time(retina, batches)) for _ in range(args.repeats)]
        f = statistics.median(p[0] for p in pairs)
        r = statistics.median(p[1] for p in pairs)
        ratio = statistics.median(p[1] / p[0] for p in pairs)
        print(f"{what:38s} Faster R-CNN {1000 * f:7.1f} ms/step   RetinaNet {1000 * r:7.1f} ms/step   ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
