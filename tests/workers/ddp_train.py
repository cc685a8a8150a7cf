"""Run under `torchrun --nproc_per_node 2`: train the smoke detector for one epoch over 23 images with a total
batch of 4 (2 per process; the last batch of 3 splits 2/1), then run sharded inference; rank 0 saves the detections as JSON.
``--sampler repeat_factor`` draws the epoch with repeat-factor sampling instead.

Used by tests/test_distributed.py; ``--fail-at-step N`` makes rank 1 raise after step N instead."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ddp_setup import build_model, image_sampler, train_config, training_images  # noqa: E402

from acsl.data import LVISDetection  # noqa: E402
from acsl.engine import distributed, predict, train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bench")
    parser.add_argument("out_dir")
    parser.add_argument("--fail-at-step", type=int, default=None)
    parser.add_argument("--sampler", default="uniform", help="an acsl.data.samplers name (repeat_factor: t = 0.3)")
    args = parser.parse_args()
    bench = Path(args.bench)
    with distributed.process_group("cpu") as device:
        train_set = LVISDetection(bench / "annotations" / "train.json", bench / "images" / "train",
                                  train=True, hflip_prob=0.5, seed=0)
        val_set = LVISDetection(bench / "annotations" / "val.json", bench / "images" / "val")
        model = build_model(train_set)

        def fail(step: int) -> None:
            if distributed.rank() == 1 and step == args.fail_at_step:
                raise RuntimeError(f"rank 1 fails on purpose at step {step}")

        images = training_images(train_set)
        train(model, images, train_config(epochs=1), args.out_dir, seed=0, device=device, progress=False,
              on_step=fail if args.fail_at_step is not None else None, sampler=image_sampler(images, args.sampler))
        detections = predict(model, val_set, batch_size=3, device=device, progress=False)
        if distributed.is_main_process():
            (Path(args.out_dir) / "detections.json").write_text(json.dumps(detections))


if __name__ == "__main__":
    main()
