"""Where a training step and an evaluation pass of a profile's detector spend their time, per phase.

    python benchmarks/bench_train_step.py [--profile quick] [--iterations 12] [--repeats 3] [--eval-images 40]
                                          [--pooled-dtypes float16 float32] [--cache-all]

Training: the profile's stage-1 detector on its batches (softmax CE) as a stage-1 run builds it (on a
synthetic profile: a fine-tune from the pretrained start, docs/ARCHITECTURE.md, "The pretrained start"; with
``--from-scratch``: the whole detector trained from random initialisation, as stage 1 was before), timed
per phase with module hooks: data (reading and collating the images), transform (resize and
normalise), backbone + FPN, RPN (anchors, proposals, its losses), RoI heads (sampling, RoIAlign, box head)
with the classification loss timed apart, backward and the optimizer step. Evaluation: the same phases in
eval mode plus the post-processing (NMS, top detections). On the CPU profiles a stage-1 run trains the RoI
heads on cached FPN maps and proposals (``acsl.engine.proposal_cache``): that step is timed too, with
RoIAlign every step and reading the cached pooled RoI features instead (``acsl.engine.pooled_cache``, each
storage type of ``--pooled-dtypes``, and, where the profile freezes the box head's first layer, that layer's
outputs: what its runs read), with the caches' build times and sizes (``--cache-all``: of the whole
training set). Each phase is printed in ms per iteration and as a share of the whole, so a before/after pair
of runs shows what a change bought; then the medians of ``--repeats`` runs of each step (the machine may
be shared) and their ratios to the step on images and to the cached step with RoIAlign. The first 2
iterations are left out (first-touch allocations).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import torch

from acsl.data import collate_detection
from acsl.data.samplers import UniformSampler
from acsl.engine.proposal_cache import CachedRoIHeadStep, build_proposal_cache
from acsl.losses import build_loss
from acsl.models import build_detector
from acsl.profiles import get_profile
from acsl.runs import RunStore, baseline_spec

SKIPPED = 2


class PhaseTimer:
    """Wall time per named module, from forward pre-hooks and hooks; a nested module's time is
    subtracted from its parent's by listing the child after the parent in ``modules``."""

    def __init__(self, modules: dict[str, torch.nn.Module]) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._started: dict[str, float] = {}
        self._nested: dict[str, str] = {}
        names = list(modules)
        for name, module in modules.items():
            module.register_forward_pre_hook(lambda *_, n=name: self._start(n))
            module.register_forward_hook(lambda *_, n=name: self._stop(n))
        for parent, child in zip(names, names[1:]):
            if any(m is modules[child] for m in modules[parent].modules()):
                self._nested[child] = parent

    def _start(self, name: str) -> None:
        self._started[name] = time.perf_counter()

    def _stop(self, name: str) -> None:
        elapsed = time.perf_counter() - self._started.pop(name)
        self.totals[name] += elapsed
        if name in self._nested:
            self.totals[self._nested[name]] -= elapsed

    def add(self, name: str, seconds: float) -> None:
        self.totals[name] += seconds


def timed_modules(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    return {"transform": model.transform, "backbone + FPN": model.backbone, "RPN": model.rpn,
            "RoI heads": model.roi_heads, "classification loss": model.roi_heads.classification_loss}


def timed_update(loss: torch.Tensor, optimizer: torch.optim.Optimizer, parameters: list, timer: PhaseTimer) -> None:
    """Backward, then clipping (at the recipe's 35) and the optimizer step, each timed into ``timer``."""
    t = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    timer.add("backward", time.perf_counter() - t)
    t = time.perf_counter()
    torch.nn.utils.clip_grad_norm_(parameters, 35.0)
    optimizer.step()
    timer.add("optimizer", time.perf_counter() - t)


def load_batches(train_set, count: int, batch_size: int, timer: PhaseTimer):
    start = time.perf_counter()
    batches = [collate_detection([train_set[(i * batch_size + j) % len(train_set)] for j in range(batch_size)])
               for i in range(count)]
    timer.add("data", time.perf_counter() - start)
    return batches


def profile_training(profile: str, iterations: int, from_scratch: bool, train_set) -> tuple[dict, float, float]:
    settings = get_profile(profile)
    torch.manual_seed(0)
    loss = build_loss("softmax_ce", train_set.num_classes, train_set.frequencies)
    detector = baseline_spec(profile).detector_config()
    if from_scratch:
        detector = replace(detector, frozen_norm=False, frozen_backbone=False, frozen_rpn=False)
    model = build_detector(detector, train_set.num_classes, loss)
    model.train()
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(parameters, lr=0.001, momentum=0.9, weight_decay=1e-4)
    timer = PhaseTimer(timed_modules(model))
    batches = load_batches(train_set, iterations + SKIPPED, settings.stage1.batch_size, PhaseTimer({}))
    started = cpu = 0.0
    for i, (images, targets) in enumerate(batches):
        if i == SKIPPED:
            timer.totals.clear()
            started, cpu = time.perf_counter(), time.process_time()
        losses = model(images, targets)
        timed_update(sum(losses.values()), optimizer, parameters, timer)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    data = PhaseTimer({})
    cpu_data = time.process_time()
    load_batches(train_set, iterations, settings.stage1.batch_size, data)
    timer.add("data", data.totals["data"])
    return dict(timer.totals), wall + data.totals["data"], cpu + time.process_time() - cpu_data


@torch.no_grad()
def profile_evaluation(profile: str, images_count: int, val_set) -> tuple[dict, float]:
    settings = get_profile(profile)
    torch.manual_seed(0)
    loss = build_loss("softmax_ce", val_set.num_classes, val_set.frequencies)
    model = build_detector(settings.detector, val_set.num_classes, loss).eval()
    timer = PhaseTimer({k: v for k, v in timed_modules(model).items() if k != "classification loss"})
    batch = settings.eval_batch_size
    started = time.perf_counter()
    for first in range(0, images_count, batch):
        t = time.perf_counter()
        images, _ = collate_detection([val_set[i % len(val_set)] for i in range(first, first + batch)])
        timer.add("data", time.perf_counter() - t)
        model(images)
    return dict(timer.totals), time.perf_counter() - started


class FirstImages:
    """The first ``count`` images of a training set (what the cached step's benchmark caches)."""

    def __init__(self, dataset, count: int) -> None:
        self.dataset, self.count = dataset, min(count, len(dataset))
        self.ann_file, self.flips = dataset.ann_file, dataset.flips

    def __len__(self) -> int:
        return self.count

    def get(self, index: int, flip: bool):
        return self.dataset.get(index, flip)

    def is_flipped(self, index: int, epoch: int) -> bool:
        return self.dataset.is_flipped(index, epoch)


def _cached_model(profile: str, train_set):
    torch.manual_seed(0)
    loss = build_loss("softmax_ce", train_set.num_classes, train_set.frequencies)
    return build_detector(baseline_spec(profile).detector_config(), train_set.num_classes, loss)


def build_caches(profile: str, train_set, images, cache_root: Path, pooled_dtypes: tuple[str, ...]) -> dict:
    """The proposal cache of ``images`` (no pooled rows: RoIAlign every step) and one with pooled rows per
    storage type, each build timed: {name: (cache, build seconds, bytes on disk)}."""
    settings = get_profile(profile)
    t = time.perf_counter()
    maps = build_proposal_cache(_cached_model(profile, train_set), images, cache_root, device="cpu",
                                batch_size=settings.eval_batch_size, progress=False, pooled_dtype=None)
    caches = {"maps": (maps, time.perf_counter() - t, sum(f.stat().st_size for f in maps.root.glob("*")))}
    for name in pooled_dtypes:
        t = time.perf_counter()
        cache = build_proposal_cache(_cached_model(profile, train_set), images, cache_root, device="cpu",
                                     batch_size=settings.eval_batch_size, progress=False,
                                     pooled_dtype=getattr(torch, name))
        caches[f"pooled {name}"] = (cache, time.perf_counter() - t, (cache.pooled.root / "pooled.bin").stat().st_size)
    if get_profile(profile).detector.frozen_fc6:  # the rows past the frozen first layer, as the profile's runs read
        t = time.perf_counter()
        cache = build_proposal_cache(_cached_model(profile, train_set), images, cache_root, device="cpu",
                                     batch_size=settings.eval_batch_size, progress=False, after_fc6=True)
        caches["fc6 float32"] = (cache, time.perf_counter() - t, (cache.pooled.root / "pooled.bin").stat().st_size)
    return caches


def profile_cached_training(profile: str, iterations: int, train_set, cache, images) -> tuple[dict, float, float]:
    """The stage-1 step of the CPU profiles: the RoI heads on cached FPN maps and proposals
    (``acsl.engine.proposal_cache``), with RoIAlign or, when ``cache`` has them, reading pooled rows
    (``acsl.engine.pooled_cache``); phases: reading the cache, reading pooled rows, RoI heads (sampling,
    RoIAlign, box head), classification loss, backward, optimizer."""
    model = _cached_model(profile, train_set)
    batch = get_profile(profile).stage1.batch_size
    step = CachedRoIHeadStep(model, cache, images, UniformSampler(len(images), 0), batch, 0,
                             torch.device("cpu"), torch.float16, False)
    parameters = step.parameters()
    optimizer = torch.optim.SGD(parameters, lr=0.001, momentum=0.9, weight_decay=1e-4)
    timer = PhaseTimer({"RoI heads": model.roi_heads, "classification loss": model.roi_heads.classification_loss})
    reads = PhaseTimer({})

    def timed(name: str, function, inside: str | None = None):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            out = function(*args, **kwargs)
            reads.add(name, time.perf_counter() - t)
            if inside is not None:  # read within the RoI heads' forward: not theirs
                timer.add(inside, -(time.perf_counter() - t))
            return out
        return wrapper

    cache.inputs = timed("cache read", cache.inputs)
    if cache.pooled is not None:
        cache.pooled.read = timed("pooled rows read", cache.pooled.read, inside="RoI heads")
    started = cpu = 0.0
    try:
        for i, item in enumerate(step.batches(0)[: iterations + SKIPPED]):
            if i == SKIPPED:
                timer.totals.clear()
                reads.totals.clear()
                started, cpu = time.perf_counter(), time.process_time()
            timed_update(step.run(item).loss, optimizer, parameters, timer)
    finally:
        del cache.inputs
        if cache.pooled is not None:
            del cache.pooled.read
    return {**reads.totals, **timer.totals}, time.perf_counter() - started, time.process_time() - cpu


def print_table(title: str, totals: dict, wall: float, iterations: int, unit: str) -> None:
    accounted = sum(totals.values())
    rows = {**totals, "other (Python glue)": wall - accounted}
    print(f"\n{title}: {wall / iterations * 1000:.0f} ms per {unit}")
    print(f"{'phase':<24}{'ms/' + unit:>12}{'share':>9}")
    for name, seconds in rows.items():
        print(f"{name:<24}{seconds / iterations * 1000:>12.1f}{seconds / wall:>9.1%}")


def median_run(results: list[tuple[dict, float, float]]) -> tuple[dict, float, float]:
    """The run of median wall time."""
    return sorted(results, key=lambda r: r[1])[len(results) // 2]


def print_medians(runs: dict[str, list], iterations: int) -> None:
    """Median wall and CPU (process) time per iteration of each step, and their ratios to the step on images and
    to the cached step with RoIAlign (CPU time is the steadier measure on a shared machine)."""
    print(f"\nmedians of {len(runs['images'])} runs per step, ms per iteration; ratios to the step on images and "
          f"to the cached step with RoIAlign")
    print(f"{'step':<28}{'wall':>8}{'/images':>9}{'/maps':>7}{'CPU':>9}{'/images':>9}{'/maps':>7}")
    medians = {name: [statistics.median(r[k] for r in results) / iterations * 1000 for k in (1, 2)]
               for name, results in runs.items()}
    for name, (wall, cpu) in medians.items():
        image, maps = medians["images"], medians.get("maps", medians["images"])
        print(f"{name:<28}{wall:8.1f}{wall / image[0]:9.2f}{wall / maps[0]:7.2f}"
              f"{cpu:9.1f}{cpu / image[1]:9.2f}{cpu / maps[1]:7.2f}")


def compare_steps(args, train_set, cached: bool) -> None:
    """The step on images and (``cached``) the cached step with RoIAlign and with pooled rows (each storage
    type), ``args.repeats`` rounds of each in turn; each table is a step's run of median wall time."""
    batch = get_profile(args.profile).stage1.batch_size
    images = train_set if args.cache_all else FirstImages(train_set, (args.iterations + SKIPPED) * batch)
    cache_root = Path(tempfile.mkdtemp(prefix="acsl-bench-proposals-", dir=args.cache_dir))
    try:
        caches = build_caches(args.profile, train_set, images, cache_root, tuple(args.pooled_dtypes)) if cached else {}
        if caches:
            print(f"\ncaches of {len(images)} images ({'both flips' if images.flips else 'no flips'}):")
        for name, (_, seconds, size) in caches.items():
            print(f"  {name:<18} built in {seconds:7.1f} s, {size / 1e9:7.3f} GB")
        runs: dict[str, list] = {name: [] for name in ("images", *caches)}
        for _ in range(args.repeats):
            runs["images"].append(profile_training(args.profile, args.iterations, args.from_scratch, train_set))
            for name, (cache, _, _) in caches.items():
                runs[name].append(profile_cached_training(args.profile, args.iterations, train_set, cache, images))
    finally:
        shutil.rmtree(cache_root, ignore_errors=True)
    titles = {"images": "training step on images",
              "maps": "training step on cached FPN maps and proposals (RoIAlign every step)"}
    for name, results in runs.items():
        totals, wall, _ = median_run(results)
        print_table(titles.get(name, f"training step on cached {name} RoI features"), totals, wall,
                    args.iterations, "iteration")
    print_medians(runs, args.iterations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each training step; medians are reported")
    parser.add_argument("--eval-images", type=int, default=40)
    parser.add_argument("--from-scratch", action="store_true",
                        help="time the whole detector trained from random initialisation (no pretrained start)")
    parser.add_argument("--pooled-dtypes", nargs="*", default=["float16", "float32"],
                        help="storage types of the pooled RoI-feature caches to time")
    parser.add_argument("--cache-all", action="store_true",
                        help="cache the whole training set (build time and size at the profile's scale), not only "
                             "the images the timed steps read")
    parser.add_argument("--cache-dir", default=None, help="where the benchmark's caches go (default: the temp dir)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (acsl reproduce trains with 1 on a CPU; default: torch's)")
    parser.add_argument("--data-root", default="data")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    store = RunStore("/tmp/acsl-bench-train-step-runs", data_root=args.data_root, device="cpu", progress=False)
    train_set, val_set, _ = store.datasets(baseline_spec(args.profile))
    mode = "from scratch" if args.from_scratch else "as a stage-1 run"
    print(f"profile {args.profile} ({mode}), {torch.get_num_threads()} threads, batch {get_profile(args.profile).stage1.batch_size}")
    compare_steps(args, train_set, cached=not args.from_scratch and baseline_spec(args.profile).on_cached_proposals)
    if args.eval_images:
        batch = get_profile(args.profile).eval_batch_size
        totals, wall = profile_evaluation(args.profile, args.eval_images, val_set)
        print_table("evaluation", totals, wall, max(1, args.eval_images // batch), "batch")


if __name__ == "__main__":
    main()
