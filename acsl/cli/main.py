"""The argument parser and the dispatch of ``acsl data | train | eval | reproduce | reference``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ..config import CLASSIFIER_MODES, SAMPLERS
from ..io import finite_or_null
from ..profiles import DEFAULT_PROFILE, PROFILES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="acsl", description="Adaptive Class Suppression Loss: reproduce the paper.")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="generate, download or check datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    generate = data_sub.add_parser("generate", help="generate the synthetic long-tail benchmark of a profile")
    generate.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES))
    generate.add_argument("--root", default="data")
    generate.add_argument("--seed", type=int, default=0)
    download = data_sub.add_parser("download", help="download LVIS annotations or COCO 2017 images (resumable, verified)")
    download.add_argument("name", help="lvis-v0.5, lvis-v1, coco2017 or openimages (annotation files)")
    download.add_argument("--root", default="data")
    download.add_argument("--base-url", default=None, help="a mirror to fetch the same file names from")
    check = data_sub.add_parser("check", help="check an LVIS or Open Images annotation file and the images it references")
    check.add_argument("name", help="lvis-v0.5, lvis-v1 or openimages")
    check.add_argument("--root", default="data")
    check.add_argument("--split", default="val", choices=("train", "val"))
    check.add_argument("--images", default=None,
                       help="openimages: the folder of <ImageID>.jpg (default <root>/openimages/images/<split>)")
    check.add_argument("--all-images", action="store_true", help="decode every image, not a sample")
    check.add_argument("--examples", type=int, default=5, metavar="N",
                       help="problems shown per kind (every kind is counted; image problems come first)")

    for name, help_text in (("train", "train one experiment (stage 1 or 2)"), ("eval", "train if needed, then evaluate one experiment")):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES))
        cmd.add_argument("--loss", default="softmax_ce")
        cmd.add_argument("--stage", type=int, default=1, choices=(0, 1, 2),
                         help="0: the synthetic profiles' pretrained start; 1: end to end; 2: decoupled classifier")
        cmd.add_argument("--schedule", type=int, default=1, help="multiple of the profile's 1x stage-1 schedule")
        cmd.add_argument("--xi", type=float, default=None, help="ACSL's ξ (same as --option xi=VALUE)")
        cmd.add_argument("--statistic-free", action="store_true", help="ACSL without the frequency schedule")
        cmd.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                         help="a loss option, e.g. --option xi=0.7 (repeatable)")
        cmd.add_argument("--batch-size", type=int, default=None,
                         help="total images per step over all processes (default: the profile's); the lr scales linearly")
        cmd.add_argument("--detector", action="append", default=[], metavar="FIELD=VALUE",
                         help="override the profile's detector, e.g. --detector architecture=cascade_rcnn "
                              "--detector backbone=resnet101 (repeatable)")
        cmd.add_argument("--sampler", default="uniform", choices=SAMPLERS,
                         help="training image sampler: repeat_factor (RFS), class_balanced (cRT/LWS, class-aware)")
        cmd.add_argument("--sampler-option", action="append", default=[], metavar="KEY=VALUE",
                         help="a sampler option, e.g. --sampler-option threshold=0.001 (repeatable)")
        cmd.add_argument("--classifier", default="stage1", choices=CLASSIFIER_MODES,
                         help="stage 2: train the stage-1 classifier (default), re-initialise it (cRT) or learn "
                              "a scale per class (LWS)")
        cmd.add_argument("--cached-stage2", action="store_true",
                         help="stage 2 on box-head features cached from the frozen stage-1 detector (fast)")
        cmd.add_argument("--cache-no-flips", action="store_true",
                         help="with --cached-stage2: cache the unflipped RoIs only (half the disk)")
        cmd.add_argument("--cache-limit-gb", type=float, default=None,
                         help="refuse a RoI-feature cache above this size (default: $ACSL_CACHE_LIMIT_GB, else the free disk)")
        cmd.add_argument("--max-iters", type=int, default=None, metavar="N",
                         help="stop training after N iterations (a bounded sanity run, stored apart from full runs)")
        cmd.add_argument("--subset", type=int, default=None, metavar="N",
                         help="train and evaluate on the first N images of train and of val (stored apart from full runs)")
        cmd.add_argument("--seed", type=int, default=0)
        cmd.add_argument("--device", default="auto", help="auto, cpu, cuda (under torchrun: cuda:LOCAL_RANK)")
        cmd.add_argument("--run-store", default="runs")
        cmd.add_argument("--data-root", default="data")
        cmd.add_argument("--no-progress", action="store_true", help="no progress bars")
        cmd.add_argument("--no-amp", action="store_true", help="full fp32 on CUDA (default: bf16/fp16 mixed precision)")
        cmd.add_argument("--channels-last", action="store_true", help="NHWC memory layout for the convolutions")
        cmd.add_argument("--workers", type=int, default=None,
                         help="DataLoader worker processes for training images (default: the profile's)")

    _add_reproduce(sub.add_parser("reproduce", help="execute the notebooks with papermill into reports/"))
    _add_reference(sub.add_parser("reference", help="write a profile's reference CSVs from a report, or check a "
                                                    "report against them (docs/ARCHITECTURE.md, \"The same numbers "
                                                    "on any machine\")"))
    return parser


def _add_reference(ref: argparse.ArgumentParser) -> None:
    ref_sub = ref.add_subparsers(dest="reference_command", required=True)
    for name, help_text in (("update", "write reference/<profile>/ from the report's CSVs and provenance (atomic)"),
                            ("verify", "compare every CSV cell of an existing report with reference/<profile>/; "
                                       "exit 1 if any differs")):
        cmd = ref_sub.add_parser(name, help=help_text)
        cmd.add_argument("reports", nargs="?", default="reports", help="the report folder (default: reports)")
        cmd.add_argument("--profile", default=None, choices=sorted(PROFILES),
                         help="default: the profile of the report's notebooks")
        cmd.add_argument("--reference-root", default=None, metavar="DIR",
                         help="the folder of the references (default: reference/ at the repository root)")


def _add_reproduce(rep: argparse.ArgumentParser) -> None:
    rep.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES))
    rep.add_argument("--only", nargs="+", default=None, metavar="NAME", help="notebook names (default: all)")
    rep.add_argument("--reports", default="reports")
    rep.add_argument("--run-store", default="runs")
    rep.add_argument("--data-root", default="data")
    rep.add_argument("--device", default="auto")
    rep.add_argument("--processes", type=int, default=1,
                     help="train each run with this many processes (torchrun), for notebooks that take the parameter")
    rep.add_argument("--jobs", type=int, default=None, metavar="N",
                     help="notebooks executed at once (default: one per core on a CPU, each training with one "
                          "thread; 1 on a GPU)")
    rep.add_argument("--max-iters", type=int, default=None, metavar="N",
                     help="stop every training after N iterations (a sanity run; stored apart from full runs), for "
                          "notebooks that take the parameter")
    rep.add_argument("--verify", action="store_true",
                     help="then compare every CSV cell with reference/<profile>/ and exit 1 if any differs "
                          "(an existing report, without running anything: acsl reference verify)")
    rep.add_argument("--reference-root", default=None, metavar="DIR",
                     help="with --verify: the folder of the references (default: reference/ at the repository root)")


def _interruptible(work):
    """``work()``; on Ctrl-C, exit at once with status 130. ``acsl reproduce --jobs 2`` runs notebooks in
    threads that Python would otherwise wait for at exit; their kernels stop when this process is gone."""
    try:
        return work()
    except KeyboardInterrupt:
        print("acsl reproduce: interrupted; the previous report is unchanged", file=sys.stderr, flush=True)
        os._exit(130)


def _reproduce(args: argparse.Namespace) -> int:
    from ..reference import require_reference, verification_text, verify
    from ..report import reproduce

    if args.verify:  # a missing reference fails now, not after the notebooks
        require_reference(args.profile, args.reference_root, args.reports)
    started = time.perf_counter()
    results = _interruptible(lambda: reproduce(args.profile, args.only, args.reports, args.run_store, args.data_root,
                                               args.device, processes=args.processes, max_iters=args.max_iters,
                                               jobs=args.jobs))
    for result in results:
        print(f"{result.name:32s} {result.wall_s:8.1f} s   {result.title}")
    print(f"total {time.perf_counter() - started:.1f} s; open {args.reports}/index.html")
    if not args.verify:
        return 0
    checked = verify(args.reports, args.profile, args.reference_root, [r.name for r in results] if args.only else None)
    print(verification_text(checked))
    return 0 if checked.ok else 1


def _reference(args: argparse.Namespace) -> int:
    from ..reference import verification_text, verify, write_reference

    if args.reference_command == "update":
        folder, files = write_reference(args.reports, args.profile, args.reference_root)
        print(f"wrote {folder}: {len(files)} CSV files and provenance.json (from {args.reports})")
        return 0
    checked = verify(args.reports, args.profile, args.reference_root)
    print(verification_text(checked))
    return 0 if checked.ok else 1


def _data(args: argparse.Namespace) -> int:

    if args.data_command == "generate":
        from ..runs import profile_benchmark

        print(profile_benchmark(args.profile, args.root, args.seed).root)
        return 0
    if args.data_command == "download":
        from ..data.download import download_dataset

        started = time.perf_counter()
        paths = download_dataset(args.name, args.root, base_url=args.base_url)
        print(f"{args.name}: {len(paths)} paths ready under {args.root} ({time.perf_counter() - started:.1f} s)")
        return 0
    if args.name == "openimages":
        return _check_openimages(args)
    versions = {"lvis-v0.5": "v0.5", "lvis-v1": "v1"}
    if args.name not in versions:
        raise ValueError(f"unknown dataset {args.name!r} for `data check`; choose one of {', '.join(versions)}")
    folder = args.name.replace("-", "_")
    ann_file = Path(args.root) / folder / "annotations" / f"{folder}_{args.split}.json"
    # v0.5 names images by file name inside COCO's split folder; v1 by coco_url ("train2017/x.jpg").
    image_root = Path(args.root) / "coco"
    if versions[args.name] == "v0.5":
        image_root = image_root / f"{args.split}2017"
    from ..data.check_report import check_report

    report = check_report(ann_file, image_root, version=versions[args.name], check_images="all" if args.all_images else True)
    print(report.format(args.examples))
    mismatch = _split_category_mismatch(ann_file, args.split)
    if mismatch:
        print(f"{ann_file}: {mismatch}")
    return 1 if report.num_problems or mismatch else 0


def _split_category_mismatch(ann_file: Path, split: str) -> str | None:
    """What differs between the category ids of ``ann_file`` and of the other split's file beside it (None when
    they agree, or when either cannot be read: the check above reports a bad file)."""
    from ..data.categories import category_mismatch, file_category_ids

    other_split = "val" if split == "train" else "train"
    other = ann_file.with_name(ann_file.name.replace(f"_{split}.json", f"_{other_split}.json"))
    if other == ann_file or not other.is_file():
        return None
    try:
        ids = {split: file_category_ids(ann_file), other_split: file_category_ids(other)}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    files = {split: ann_file, other_split: other}
    return category_mismatch(ids["train"], ids["val"], files["train"], files["val"])


def _check_openimages(args: argparse.Namespace) -> int:
    """Read one split's Open Images files (every malformed row is named) and report the images missing
    from the image folder; exit 1 when any is missing."""

    from ..data.download import require_data
    from ..data.openimages import read_openimages

    require_data("openimages", args.root)
    folder = Path(args.root) / "openimages" / "annotations"
    split = "train" if args.split == "train" else "validation"
    images = Path(args.images) if args.images else Path(args.root) / "openimages" / "images" / split
    data = read_openimages(folder / f"challenge-2019-{split}-detection-bbox.csv",
                           folder / "challenge-2019-classes-description-500.csv",
                           folder / "challenge-2019-label500-hierarchy.json", images,
                           folder / f"challenge-2019-{split}-detection-human-imagelabels.csv")
    missing = data["info"]["missing_images"]
    print(f"openimages {split}: {len(data['categories'])} classes, {len(data['images'])} images found in {images}, "
          f"{len(data['annotations'])} boxes; {len(missing)} images missing"
          + (f" (first: {', '.join(missing[:10])})" if missing else ""))
    return 1 if missing else 0


def interrupted_note(run_dir: Path | None) -> str:
    """One line for Ctrl-C of ``train``/``eval``: where the last checkpoint of the run that was training is, and
    that the same command resumes from it (or, before its first epoch ended, starts it again)."""
    from ..engine import CHECKPOINT_NAME

    checkpoint = None if run_dir is None else Path(run_dir) / CHECKPOINT_NAME
    if checkpoint is not None and checkpoint.is_file():
        return f"interrupted; the last checkpoint is {checkpoint}; the same command resumes from it"
    if run_dir is not None:
        return f"interrupted before the first checkpoint of {Path(run_dir).name}; the same command starts it again"
    return "interrupted; the same command starts again"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "data":
            return _data(args)
        elif args.command in ("train", "eval"):
            from ..engine import distributed
            from ..runs import RunStore
            from ..runs.identity import data_identity
            from .arguments import spec_from_arguments

            spec = spec_from_arguments(args)
            # Under `torchrun --nproc_per_node K -m acsl train ...` every process joins the group here.
            with distributed.process_group(args.device) as device:
                data_identity(spec, args.data_root)  # real data that is missing fails here, before anything
                store = RunStore(args.run_store, data_root=args.data_root, device=str(device),
                                 progress=not args.no_progress, amp=not args.no_amp, channels_last=args.channels_last,
                                 workers=args.workers, cache_limit_gb=args.cache_limit_gb)
                try:
                    if args.command == "train":
                        result = str(store.checkpoint(spec))
                    else:
                        result = json.dumps(finite_or_null(store.metrics(spec)["metrics"]), indent=2)  # NaN: null
                except KeyboardInterrupt:
                    print(f"acsl {args.command}: {interrupted_note(store.stopped_run or store.run_dir(spec))}",
                          file=sys.stderr)
                    return 130
                if distributed.is_main_process():
                    if spec.max_iters is not None or spec.subset is not None:
                        bounds = ", ".join(f"{name} {value}" for name, value in (("max_iters", spec.max_iters),
                                                                                 ("subset", spec.subset)) if value is not None)
                        print(f"acsl {args.command}: a pipeline check ({bounds}): it shows that the pipeline runs; "
                              "its numbers are not results", file=sys.stderr)
                    print(result)
        elif args.command == "reproduce":
            return _reproduce(args)
        elif args.command == "reference":
            return _reference(args)
    except (ValueError, OSError, RuntimeError, FloatingPointError) as error:
        print(f"acsl {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
