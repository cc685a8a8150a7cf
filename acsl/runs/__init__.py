"""Experiments: specs and method recipes, the datasets of a spec, and the run store that trains,
evaluates and caches runs by spec hash (docs/ARCHITECTURE.md, "How a run flows")."""

from .datasets import lvis_files, load_datasets, profile_benchmark
from .methods import (AFTER_ACSL_METHODS, METHODS, NOT_IMPLEMENTED, ONE_STAGE_METHODS, OPENIMAGES_METHODS, Method,
                      method_spec)
from .spec import ExperimentSpec, OptionValue, baseline_spec, decoupled_spec, pretrain_spec
from .store import METRICS_NAME, REPORTED_METRICS, RunStore, build_model

__all__ = [
    "AFTER_ACSL_METHODS", "METHODS", "METRICS_NAME", "Method", "NOT_IMPLEMENTED", "ONE_STAGE_METHODS", "OPENIMAGES_METHODS", "OptionValue", "REPORTED_METRICS",
    "ExperimentSpec", "RunStore", "baseline_spec", "build_model", "decoupled_spec", "load_datasets", "lvis_files",
    "method_spec", "pretrain_spec", "profile_benchmark",
]
