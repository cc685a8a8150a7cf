"""Time of the check that every image of a split is there before a run trains (``LVISDetection.require_images``,
issue 25), on N image records in LVIS v0.5's layout: ``file_name`` is the COCO-2014 name and the file on disk
the COCO-2017 one, so each present image costs two ``stat`` calls (the 2014 name, missing; then the 2017 name).
Printed against a baseline in the same process: one ``os.stat`` per file, the least any check can do.

    python benchmarks/bench_image_check.py [--images 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from acsl.data import LVISDetection


def write_layout(root: Path, count: int) -> tuple[Path, Path, list[Path]]:
    """An LVIS v0.5 annotation file of ``count`` images (one box each) and their (empty) COCO-2017 files."""
    images = root / "train2017"
    images.mkdir(parents=True)
    records, annotations, paths = [], [], []
    for k in range(1, count + 1):
        name = f"{k:012d}.jpg"
        path = images / name
        path.touch()
        paths.append(path)
        records.append({"id": k, "width": 64, "height": 48, "file_name": f"COCO_train2014_{name}",
                        "neg_category_ids": [], "not_exhaustive_category_ids": []})
        annotations.append({"id": k, "image_id": k, "category_id": 1, "bbox": [4, 5, 30, 20], "area": 600.0})
    ann_file = root / "lvis_v0.5_train.json"
    ann_file.write_text(json.dumps({"images": records, "annotations": annotations,
                                    "categories": [{"id": 1, "name": "ski_pole", "frequency": "f"}]}))
    return ann_file, images, paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="acsl-bench-images-"))
    try:
        started = time.perf_counter()
        ann_file, images, paths = write_layout(root, args.images)
        print(f"{args.images} image records and files written in {time.perf_counter() - started:.1f} s")
        dataset = LVISDetection(ann_file, images)
        baseline, check = [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            for path in paths:
                os.stat(path)
            baseline.append(time.perf_counter() - started)
            started = time.perf_counter()
            dataset.require_images()
            check.append(time.perf_counter() - started)
        base, ours = statistics.median(baseline), statistics.median(check)
        print(f"one os.stat per file (baseline): {base:.2f} s;  require_images: {ours:.2f} s "
              f"({ours / base:.2f}x the baseline; medians of {args.repeats})")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
