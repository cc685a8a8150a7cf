"""One process of a parallel report: asks the run store for a smoke spec's metrics and appends the name
of every run it trained itself to a shared log (tests/test_locks.py)."""

import json
import os
import sys

import acsl.engine.proposal_cache as proposal_cache
import acsl.engine.roi_cache as roi_cache
import acsl.runs.store as store_module
from acsl.runs import RunStore, decoupled_spec

root, log = sys.argv[1], sys.argv[2]


def logged(train):
    """``train`` (any of the store's three training entry points), logging the run directory first."""
    def logged_train(*args, **kwargs):
        out_dir = next(a for a in args if isinstance(a, (str, os.PathLike)))  # the first path: the run directory
        with open(log, "a") as handle:
            handle.write(f"{out_dir}\n")
        return train(*args, **kwargs)
    return logged_train


store_module.train = logged(store_module.train)  # images: the pretrained start
proposal_cache.train_on_proposal_cache = logged(proposal_cache.train_on_proposal_cache)  # stage 1 on the CPU
roi_cache.train_classifier_on_cache = logged(roi_cache.train_classifier_on_cache)  # the cached stage 2
store = RunStore(f"{root}/runs", data_root=f"{root}/data", device="cpu", progress=False, max_iters=3)
record = store.metrics(decoupled_spec("smoke", "acsl", xi=0.7))
print(json.dumps({"metrics": record["metrics"], "num_detections": record["num_detections"]}, sort_keys=True))
