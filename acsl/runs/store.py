"""The run store: a directory of runs keyed by spec hash (docs/ARCHITECTURE.md, "How a run flows").

``<root>/<spec name>-<key>/`` holds ``checkpoint.pt``, ``log.jsonl``, ``timing.json`` and
``metrics.json``; the key is the spec hash, and on real data the spec hash with the identity of the data
(``acsl.runs.identity``; the dir's ``data.json`` records it). Asking for a spec's metrics returns the
stored record, or trains what is missing (the stage-1 parent first, then the spec) and evaluates it:
spec → run store → metrics JSON.

``metrics.json`` is the deterministic record (the same spec and seed give the same bytes); wall-clock
times live in ``timing.json`` and are added to the record as ``"timing"`` when it is read. An undefined
number is stored as ``null`` and read back as NaN. A record or checkpoint that cannot be read is moved
aside (``<name>.corrupt-<time>``) with a warning naming it, and recomputed; temporaries left by a killed
process are removed when a store opens.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import shutil
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..data.samplers import build_sampler
from ..engine import CHECKPOINT_NAME, distributed, load_checkpoint, load_stage1_weights, predict, resolve_device, train
from ..io import (CorruptRecordError, atomic_write_json, ensure_writable_dir, move_aside, read_json_record,
                  remove_stale_temporaries)
from ..locks import exclusive
from ..losses import build_dense_loss, build_loss, loss_class
from ..models import build_detector
from ..models.detector import load_detector_init
from ..models.classifiers import apply_stage2_classifier
from .datasets import Datasets, data_files, evaluation_truth, load_datasets
from .identity import bounded, checkpoint_finished, data_identity, record_data, run_key, stale_run_notes
from .scoring import REPORTED_METRICS, score_detections  # noqa: F401 (re-exported)
from .spec import ExperimentSpec

METRICS_NAME = "metrics.json"
TIMING_NAME = "timing.json"
LOCKS_DIR = ".locks"  #: under the store root: one lock file per run (acsl.locks)

#: Trains a spec with several processes (e.g. ``acsl.cli.launch.torchrun_launcher``): called with the spec
#: and the store, it must leave the spec's finished checkpoint in the store.
Launcher = Callable[[ExperimentSpec, "RunStore"], None]


def build_model(spec: ExperimentSpec, train_set):
    """The spec's detector with its loss, initialised from the spec's seed; the loss gets the training
    set's class statistics (and, on the Open Images track, the class hierarchy: paper §5, "we train the
    models under multiple label setting")."""
    import torch

    torch.manual_seed(spec.seed)
    options = dict(spec.loss_options)
    if "seed" in inspect.signature(loss_class(spec.loss)).parameters:  # its own random stream, one per process
        options.setdefault("seed", spec.seed + 1_000_003 * distributed.rank())
    if spec.one_stage:
        dense = build_dense_loss(spec.loss, train_set.num_classes, train_set.frequencies, **options)
        return build_detector(spec.detector_config(), train_set.num_classes, dense)
    loss = build_loss(spec.loss, train_set.num_classes, train_set.frequencies,
                      class_image_counts=train_set.image_counts, class_instance_counts=train_set.instance_counts,
                      num_images=len(train_set), **options)
    if spec.settings.track == "openimages" and loss.supports_multi_label:
        from ..data.openimages_synthetic import hierarchy_ancestors

        loss.set_label_hierarchy(hierarchy_ancestors(train_set.lvis.dataset, train_set.category_id_to_label))
    return build_detector(spec.detector_config(), train_set.num_classes, loss)


class RunStore:
    """Runs keyed by spec hash under ``root``; benchmark data generated under ``data_root``.

    ``launcher`` (optional) trains a spec with several processes; without it every run trains in this
    process (which may itself be one of torchrun's). ``amp`` and ``channels_last`` (CUDA only) and the
    loader's ``workers`` (None: the profile's ``loader_workers`` on CUDA, 0 on the CPU) do not change a run's result beyond
    numeric precision, so they are not part of a spec's hash; ``metrics.json`` records the device and
    precision. ``max_iters`` bounds every spec asked for that is not bounded already (``acsl reproduce
    --max-iters``): the bounded spec is what is stored. ``cache_limit_gb``: the largest feature cache the
    fast stage 2 may write (``acsl.engine.roi_cache``; ``acsl.engine.val_cache`` evaluates with the whole
    detector instead of writing a larger one)."""

    def __init__(self, root: str | Path = "runs", data_root: str | Path = "data", device: str = "auto",
                 progress: bool = True, launcher: Launcher | None = None, amp: bool = True,
                 channels_last: bool = False, workers: int | None = None, max_iters: int | None = None,
                 cache_limit_gb: float | None = None) -> None:
        if workers is not None and workers < 0:
            raise ValueError(f"loader workers must be >= 0 (or None for the profile's), got {workers}")
        self.root = ensure_writable_dir(root, "run store")
        if distributed.is_main_process():
            remove_stale_temporaries(self.root, depth=3)  # <root>/<run>/roi_cache/: what a killed process left
        self.data_root = Path(data_root)
        self.device_name = str(device)
        self.device = resolve_device(device)
        self.progress = progress
        self.launcher = launcher
        self.amp, self.channels_last, self.workers = amp, channels_last, workers
        self._loaded: dict[tuple, Datasets] = {}
        #: The run that was training when an error or Ctrl-C stopped the store (the innermost one), else None.
        self.stopped_run: Path | None = None
        self.max_iters, self.cache_limit_gb = max_iters, cache_limit_gb
        self._identities: dict[str, dict | None] = {}
        self._noted: set[str] = set()

    def data_identity(self, spec: ExperimentSpec) -> dict | None:
        """The identity of the spec's real data (None: synthetic), computed once per profile and store."""
        if spec.profile not in self._identities:
            self._identities[spec.profile] = data_identity(spec, self.data_root, self.progress)
        return self._identities[spec.profile]

    def run_dir(self, spec: ExperimentSpec) -> Path:
        """``<root>/<name>-<key>``; stored runs of the spec on other data are named in a note, never used."""
        spec = bounded(spec, self.max_iters)
        identity = self.data_identity(spec)
        key = run_key(spec, identity)
        if key not in self._noted and distributed.is_main_process():
            self._noted.add(key)
            for note in stale_run_notes(self.root, spec, key, identity):
                print(note, file=sys.stderr)
        return self.root / f"{spec.name}-{key}"

    def timing(self, spec: ExperimentSpec) -> dict[str, float]:
        """The wall times stored for ``spec`` (e.g. ``train_s`` of a pretrained start, which has no metrics)."""
        return read_timings(self.run_dir(spec))

    def is_done(self, spec: ExperimentSpec) -> bool:
        return read_record(self.run_dir(spec)) is not None

    def datasets(self, spec: ExperimentSpec) -> Datasets:
        """(train, val, val annotation file) of the spec's profile, generating the benchmark if missing;
        loaded once per store (real LVIS annotation files take a while to parse)."""
        key = (spec.profile, spec.seed, spec.stage, spec.subset)
        if key not in self._loaded:
            self._loaded[key] = load_datasets(spec, self.data_root, self.progress)
        return self._loaded[key]

    def run_lock(self, spec: ExperimentSpec):
        """The lock under which one process trains or evaluates ``spec`` (``acsl.locks``): another process
        of a parallel report that needs the same run waits, then reads what the first stored."""
        name = self.run_dir(spec).name
        return self._lock(f"{name}.lock", f"run {name}")

    def cache_lock(self, holder: ExperimentSpec):
        """The lock under which one process builds a cache kept in ``holder``'s run directory (the proposal
        cache of a pretrained start; the RoI and val feature caches of a stage-1 run)."""
        name = self.run_dir(holder).name
        return self._lock(f"{name}.caches.lock", f"the caches of {name}")

    def _lock(self, file_name: str, what: str):
        if distributed.is_distributed():  # torchrun's ranks: their parent holds the lock for the launch
            return contextlib.nullcontext()
        return exclusive(self.root / LOCKS_DIR / file_name, what)

    def checkpoint(self, spec: ExperimentSpec) -> Path:
        """The spec's trained checkpoint, training it (and its stage-1 parent) when missing or unfinished; for a
        spec that only transforms another's test scores (NorCal), that spec's (``ExperimentSpec.trained_as``)."""
        spec = bounded(spec, self.max_iters)
        if spec.trained_as is not None:
            return self.checkpoint(spec.trained_as)
        checkpoint = self.run_dir(spec) / CHECKPOINT_NAME
        if _finished(checkpoint, spec):
            return checkpoint
        with self.run_lock(spec):
            if _finished(checkpoint, spec):  # another process trained it while this one waited
                return checkpoint
            return self._train_checkpoint(spec, checkpoint)

    def _train_checkpoint(self, spec: ExperimentSpec, checkpoint: Path) -> Path:
        run_dir = self.run_dir(spec)
        created = not run_dir.exists()
        try:
            return self._train_new_checkpoint(spec, checkpoint)
        except BaseException:  # an error before the first checkpoint leaves no run folder without a run
            self.stopped_run = self.stopped_run or run_dir
            if created and distributed.is_main_process() and run_dir.is_dir() and not checkpoint.exists():
                shutil.rmtree(run_dir, ignore_errors=True)
            raise

    def _train_new_checkpoint(self, spec: ExperimentSpec, checkpoint: Path) -> Path:
        if distributed.is_main_process():
            self.run_dir(spec).mkdir(parents=True, exist_ok=True)
            record_data(self.run_dir(spec), spec, self.data_identity(spec))
        if spec.cached or spec.on_cached_proposals:
            # Everything with collectives first, on every rank: the stage-1 parent and the datasets. Then
            # rank 0 alone builds the cache and trains the classifier (seconds of work); the others wait.
            self.checkpoint(spec.parent)
            self.datasets(spec)
            if distributed.is_main_process():
                if spec.cached:
                    self._train_cached(spec)
                else:
                    self._train_on_proposals(spec)
            distributed.barrier()
        elif self.launcher is not None and not distributed.is_distributed():
            if spec.parent is not None:  # the ranks take no locks: what they share with other runs (the
                self.checkpoint(spec.parent)  # parent or pretrained start, the benchmark) is made first, here
            data_files(spec, self.data_root, self.progress)
            self.launcher(spec, self)
        else:
            self._train(spec)
        return checkpoint

    def _initial_model(self, spec: ExperimentSpec, train_set):
        """The detector a spec's training starts from: fresh; for stage 1 with a pretrained start, its
        backbone, FPN, RPN and box head with a fresh classifier; for stage 2 its trained parent's weights."""
        model = build_model(spec, train_set)
        if spec.stage == 1 and spec.parent is not None:
            load_detector_init(model, str(self.checkpoint(spec.parent)))
        elif spec.parent is not None:
            load_stage1_weights(model, self.checkpoint(spec.parent))
            apply_stage2_classifier(model, spec.classifier)
        return model

    def _train(self, spec: ExperimentSpec) -> None:
        train_set, _, _ = self.datasets(spec)
        if spec.parent is not None:
            self.checkpoint(spec.parent)  # the parent trains first
        model = self._initial_model(spec, train_set)
        started = time.perf_counter()
        sampler = build_sampler(spec.sampler, train_set.image_labels, spec.seed, **dict(spec.sampler_options))
        run_dir = self.run_dir(spec)
        train(model, train_set, spec.train_config(), run_dir, stage=max(spec.stage, 1), seed=spec.seed, device=self.device,
              amp=self.amp, channels_last=self.channels_last, progress=self.progress, sampler=sampler,
              workers=self._loader_workers(spec),
              max_iters=spec.max_iters)
        if distributed.is_main_process():
            record_timing(run_dir, "train_s", time.perf_counter() - started)

    def _loader_workers(self, spec: ExperimentSpec) -> int:
        """The store's ``workers``, else the profile's on CUDA; on the CPU images load in the training process
        (the model needs every core: ``benchmarks/bench_loader.py``)."""
        if self.workers is not None:
            return self.workers
        return spec.settings.loader_workers if self.device.type == "cuda" else 0

    def _train_cached(self, spec: ExperimentSpec) -> None:
        from ..engine.roi_cache import build_roi_cache, train_classifier_on_cache

        train_set, _, _ = self.datasets(spec)
        model = self._initial_model(spec, train_set)
        started = time.perf_counter()
        cache_dir = self.run_dir(spec.parent) / ("roi_cache" if spec.cache_flips else "roi_cache-noflip")
        with self.cache_lock(spec.parent):
            proposals = self._proposal_cache(spec, model, train_set) if spec.parent.on_cached_proposals else None
            cache = build_roi_cache(model, train_set, cache_dir, seed=spec.seed, device=self.device,
                                    batch_size=spec.settings.eval_batch_size, progress=self.progress,
                                    flips=spec.cache_flips, limit_gb=self.cache_limit_gb, proposals=proposals)
        cache_s = time.perf_counter() - started
        run_dir = self.run_dir(spec)
        sampler = build_sampler(spec.sampler, train_set.image_labels, spec.seed, **dict(spec.sampler_options))
        train_classifier_on_cache(model, cache, train_set, spec.train_config(), run_dir, seed=spec.seed,
                                  device=self.device, progress=self.progress, sampler=sampler,
                                  max_iters=spec.max_iters)
        record_timing(run_dir, "train_s", time.perf_counter() - started - cache_s)
        record_timing(run_dir, "cache_s", cache_s)  # ~0 when the parent's cache already existed

    def _proposal_cache(self, spec: ExperimentSpec, model, train_set):
        """The FPN maps and proposals of ``spec``'s training images under its pretrained start's frozen
        backbone, FPN and RPN, kept in the start's run directory and built by the first run that needs them."""
        from ..engine.proposal_cache import build_proposal_cache

        with self.cache_lock(spec.pretrained_start):
            config = spec.detector_config()
            return build_proposal_cache(model, train_set, self.run_dir(spec.pretrained_start), device=self.device,
                                        batch_size=spec.settings.eval_batch_size, progress=self.progress, limit_gb=self.cache_limit_gb,
                                        after_fc6=config.frozen_fc6)

    def _train_on_proposals(self, spec: ExperimentSpec) -> None:
        from ..engine.proposal_cache import train_on_proposal_cache

        train_set, _, _ = self.datasets(spec)
        model = self._initial_model(spec, train_set)
        started = time.perf_counter()
        cache = self._proposal_cache(spec, model, train_set)
        cache_s = time.perf_counter() - started
        run_dir = self.run_dir(spec)
        sampler = build_sampler(spec.sampler, train_set.image_labels, spec.seed, **dict(spec.sampler_options))
        train_on_proposal_cache(model, cache, train_set, spec.train_config(), run_dir, seed=spec.seed,
                                device=self.device, amp=self.amp, progress=self.progress, sampler=sampler,
                                max_iters=spec.max_iters, stage=spec.stage)
        record_timing(run_dir, "train_s", time.perf_counter() - started - cache_s)
        record_timing(run_dir, "cache_s", cache_s)  # ~0 when the pretrained start's cache already existed

    def metrics(self, spec: ExperimentSpec) -> dict[str, Any]:
        """Stored metrics of ``spec``; trains and evaluates it first when the store has none."""
        spec = bounded(spec, self.max_iters)
        run_dir = self.run_dir(spec)
        stored = read_record(run_dir)
        if stored is not None:
            return stored
        with self.run_lock(spec):
            stored = read_record(run_dir)  # another process may have finished it while this one waited
            return stored if stored is not None else self._evaluate(spec, run_dir)

    def _evaluate(self, spec: ExperimentSpec, run_dir: Path) -> dict[str, Any]:
        checkpoint = self.checkpoint(spec)
        if spec.trained_as is not None and distributed.is_main_process():  # no training made its folder
            run_dir.mkdir(parents=True, exist_ok=True)
            record_data(run_dir, spec, self.data_identity(spec))
        train_set, val_set, val_json = self.datasets(spec)
        model = build_model(spec, train_set)
        apply_stage2_classifier(model, spec.classifier)
        model.load_state_dict(load_checkpoint(checkpoint)["model"])
        started = time.perf_counter()
        cache = spec.val_cache_name()
        if cache is not None and (self.run_dir(spec.parent) / CHECKPOINT_NAME).is_file():  # never a folder without a run
            from ..engine.val_cache import predict_cached_stage2

            with self.cache_lock(spec.parent):
                detections, val_cache_s = predict_cached_stage2(
                    model, val_set, self.run_dir(spec.parent) / cache, spec.settings.eval_batch_size,
                    self.device, self.progress, self.cache_limit_gb, after_fc6=spec.stage == 1)
            started += val_cache_s
            record_timing(run_dir, "val_cache_s", val_cache_s, accumulate=False)  # ~0 when it already existed
        else:
            detections = predict(model, val_set, spec.settings.eval_batch_size, self.device, self.progress)
        if not distributed.is_main_process():  # rank 0 scores the gathered detections and writes the record
            distributed.barrier()
            return read_record(run_dir)
        metrics, per_class = score_detections(spec, evaluation_truth(val_set, val_json), detections)
        record = {
            "spec": asdict(spec),
            "hash": spec.hash,
            "metrics": metrics,
            "per_class_AP": per_class,
            "num_detections": len(detections),
            "device": str(self.device),
            "amp": self.amp and self.device.type == "cuda",
        }
        record_timing(run_dir, "eval_s", time.perf_counter() - started, accumulate=False)
        atomic_write_json(run_dir / METRICS_NAME, record)
        distributed.barrier()
        return read_record(run_dir)  # the same form a cached read gives


def _readable(path: Path) -> dict[str, Any] | None:
    """The JSON record at ``path``; None when it is missing, or corrupt: then it is moved aside with a
    warning that names it, so the run is recomputed instead of blocked."""
    try:
        return read_json_record(path)
    except FileNotFoundError:
        return None
    except CorruptRecordError as error:
        if not distributed.is_main_process():  # rank 0 moves it aside; every rank recomputes
            return None
        aside = move_aside(path)
        warnings.warn(f"{error}; moved it to {aside.name} and recomputing it", RuntimeWarning, stacklevel=3)
        return None


def read_record(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``metrics.json`` as its readers see it: undefined numbers (``null``) as NaN, and its
    wall-clock times from ``timing.json`` under ``"timing"``; None when there is no valid record."""
    record = _readable(Path(run_dir) / METRICS_NAME)
    if record is None or not isinstance(record.get("metrics"), dict):
        return None
    for key in ("metrics", "per_class_AP"):
        if isinstance(record.get(key), dict):
            record[key] = {name: math.nan if value is None else value for name, value in record[key].items()}
    # A record written before timing.json held every time keeps its own eval_s.
    stored = record.get("timing") if isinstance(record.get("timing"), dict) else {}
    record["timing"] = {**stored, **read_timings(Path(run_dir))}
    return record


def read_timings(run_dir: Path) -> dict[str, float]:
    """The run's wall-clock times (``timing.json``: train_s, cache_s, eval_s), {} when none are stored."""
    return _readable(run_dir / TIMING_NAME) or {}


def record_timing(run_dir: Path, key: str, seconds: float, accumulate: bool = True) -> None:
    """Add ``seconds`` to ``key`` in the run's ``timing.json`` (kept apart from its metrics), or with
    ``accumulate=False`` set it."""
    timings = read_timings(run_dir)
    timings[key] = (timings.get(key, 0.0) if accumulate else 0.0) + seconds
    atomic_write_json(run_dir / TIMING_NAME, timings)


def _finished(checkpoint: Path, spec: ExperimentSpec) -> bool:
    """Whether a stored checkpoint holds the spec's whole training (``checkpoint_finished``); False when there
    is none, or when it cannot be read: then it is moved aside with a warning that names it, so training
    starts again instead of failing for good."""
    if not checkpoint.exists():
        return False
    try:
        return checkpoint_finished(load_checkpoint(checkpoint), spec)
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        if not distributed.is_main_process():
            return False
        aside = move_aside(checkpoint)
        warnings.warn(f"{error}; moved it to {aside.name} and training again", RuntimeWarning, stacklevel=3)
        return False
