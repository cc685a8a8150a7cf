"""Real-data runs a GPU user can trust (issue 17): runs keyed by the data they saw, bounded sanity runs,
a data check that surfaces real problems, clear weights errors, a cache that is sized before it is
written, and the real Open Images files as a trainable profile."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
from pathlib import Path

import pytest
import torch
from PIL import Image

from acsl.cli.main import main
from acsl.data.check_report import check_report
from acsl.data.fingerprint import DIGEST_SUFFIX, file_sha256
from acsl.engine import load_checkpoint
from acsl.engine.roi_cache import CacheTooLargeError, build_roi_cache, estimate_cache_bytes
from acsl.losses import build_loss
from acsl.models import DetectorConfig, build_detector
from acsl.models.detector import load_detector_init
from acsl.models.weights import WeightsFileError
from acsl.runs import ExperimentSpec, RunStore, baseline_spec, build_model, decoupled_spec
from acsl.runs.identity import DATA_RECORD
from conftest import openimages_layout

#: A scaled-down detector for the paper-scale profiles: seconds on a CPU, no download.
TINY = (("backbone", "narrow_resnet"), ("fpn_channels", 64), ("init", None), ("min_size", 64), ("max_size", 64),
        ("anchor_sizes", (8, 16, 32, 64, 128)), ("rpn_pre_nms_top_n_train", 200), ("rpn_post_nms_top_n_train", 100),
        ("rpn_pre_nms_top_n_test", 100), ("rpn_post_nms_top_n_test", 50), ("rois_per_image", 16),
        ("representation_size", 32))


def _lvis_layout(root: Path, images: int = 4, missing: int | None = None) -> Path:
    """An LVIS v0.5 data root as the downloads lay it out: 2 categories, ``images`` per split."""
    categories = [{"id": 1, "name": "ski_pole", "frequency": "f", "image_count": 300},
                  {"id": 2, "name": "acorn", "frequency": "r", "image_count": 2}]
    folder = root / "lvis_v0.5" / "annotations"
    folder.mkdir(parents=True)
    for split in ("train", "val"):
        (root / "coco" / f"{split}2017").mkdir(parents=True)
        records, annotations = [], []
        for k in range(1, images + 1):
            name = f"{k:012d}.jpg"
            if k != missing:
                Image.new("RGB", (64, 48), (20 * k, 120, 200)).save(root / "coco" / f"{split}2017" / name)
            records.append({"id": k, "width": 64, "height": 48, "file_name": f"COCO_{split}2014_{name}",
                            "neg_category_ids": [], "not_exhaustive_category_ids": []})
            annotations.append({"id": k, "image_id": k, "category_id": 1 + k % 2, "bbox": [4, 5, 30, 20], "area": 600.0})
        (folder / f"lvis_v0.5_{split}.json").write_text(
            json.dumps({"images": records, "annotations": annotations, "categories": categories}))
    return root


# ------------------------------------------------------------------------------- run identity

def test_real_data_runs_are_keyed_by_the_data_and_survive_a_moved_data_root(tmp_path, capsys):
    data = _lvis_layout(tmp_path / "data")
    spec = baseline_spec("lvis-v0.5")
    store = RunStore(tmp_path / "runs", data_root=data, progress=False)
    first = store.run_dir(spec)
    assert first.name.startswith(spec.name) and not first.name.endswith(spec.hash)  # the data is in the key
    train_json = data / "lvis_v0.5" / "annotations" / "lvis_v0.5_train.json"
    assert (train_json.parent / (train_json.name + DIGEST_SUFFIX)).is_file()  # digest cached beside the file
    moved = tmp_path / "elsewhere" / "data"
    shutil.copytree(data, moved)
    assert RunStore(tmp_path / "runs", data_root=moved, progress=False).run_dir(spec).name == first.name
    # A finished run of the old data is not returned for new data: a note names it.
    first.mkdir(parents=True)
    (first / "metrics.json").write_text(json.dumps({"metrics": {"AP": 99.0}}))
    (first / DATA_RECORD).write_text(json.dumps({"spec_hash": spec.hash, "data": store.data_identity(spec)}))
    record = json.loads(train_json.read_text())
    record["images"] = record["images"][:2]
    train_json.write_text(json.dumps(record))
    fresh = RunStore(tmp_path / "runs", data_root=data, progress=False)
    assert fresh.run_dir(spec) != first and not fresh.is_done(spec)
    assert f"ignoring {first}: trained on other data (its train annotations" in capsys.readouterr().err


def test_a_run_stored_before_runs_recorded_their_data_is_ignored_with_a_note(tmp_path, capsys):
    data = _lvis_layout(tmp_path / "data")
    spec = baseline_spec("lvis-v0.5")
    old = tmp_path / "runs" / f"{spec.name}-{spec.hash}"
    old.mkdir(parents=True)
    (old / "metrics.json").write_text("{}")
    assert not RunStore(tmp_path / "runs", data_root=data, progress=False).is_done(spec)
    assert "stored before runs recorded their data" in capsys.readouterr().err


def test_file_digest_is_cached_and_follows_changes(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("one")
    first = file_sha256(path)
    assert json.loads((tmp_path / ("a.json" + DIGEST_SUFFIX)).read_text())["sha256"] == first
    path.write_text("two, longer")
    assert file_sha256(path) != first


def test_training_on_a_missing_data_root_fails_before_anything(tmp_path, capsys):
    code = main(["train", "--profile", "lvis-v0.5", "--data-root", str(tmp_path / "nowhere"),
                 "--run-store", str(tmp_path / "runs"), "--no-progress"])
    assert code == 1 and not (tmp_path / "runs").exists()
    assert "acsl data download lvis-v0.5" in capsys.readouterr().err


def test_real_data_spec_hashes_are_unchanged():
    # the data identity lives in the run key, not the spec hash, so stored real-data runs keep their hashes
    assert baseline_spec("lvis-v0.5").hash == "151c2baf5ead66b5"
    assert decoupled_spec("lvis-v0.5", "acsl", xi=0.7).hash == "9693e0260d6458f7"


# ------------------------------------------------------------------------------- bounded runs

def test_a_bounded_run_is_another_run_and_bounds_its_parent():
    full = decoupled_spec("smoke", "acsl", xi=0.7)
    bounded = ExperimentSpec("smoke", "acsl", (("xi", 0.7),), stage=2, max_iters=5, subset=8)
    assert len({full.hash, bounded.hash, ExperimentSpec("smoke", "acsl", (("xi", 0.7),), stage=2, max_iters=5).hash}) == 3
    assert bounded.parent.max_iters == 5 and bounded.parent.subset == 8 and bounded.parent.hash != full.parent.hash
    assert "iters5-subset8" in bounded.name
    with pytest.raises(ValueError, match="max_iters must be a positive integer"):
        ExperimentSpec("smoke", max_iters=0)


def test_max_iters_stops_training_where_it_says(smoke_bench, tmp_path):
    spec = ExperimentSpec("smoke", max_iters=3, subset=8, detector=(("min_size", 64), ("max_size", 64)))
    store = RunStore(tmp_path / "runs", data_root=smoke_bench.root.parent, progress=False)
    checkpoint = store.checkpoint(spec)
    state = load_checkpoint(checkpoint)
    assert state["iteration"] == 3 and state["max_iters"] == 3  # 8 images, batch 4: 2 per epoch, stopped in epoch 2
    log = [json.loads(line) for line in (checkpoint.parent / "log.jsonl").read_text().splitlines()]
    assert log[-1]["iteration"] == 3 and log[-1]["epoch"] == 2
    assert store.checkpoint(spec) == checkpoint and load_checkpoint(checkpoint)["iteration"] == 3  # finished
    train_set, val_set, _ = store.datasets(spec)
    assert len(train_set) == len(val_set) == 8 and sum(train_set.image_counts) <= 8 * 12


# ------------------------------------------------------------------------------- data check

def test_data_check_of_a_subset_file_lists_the_missing_image_first(tmp_path, capsys):
    data = _lvis_layout(tmp_path / "data", images=6, missing=4)
    ann = data / "lvis_v0.5" / "annotations" / "lvis_v0.5_val.json"
    record = json.loads(ann.read_text())
    record["images"].append({**record["images"][0], "id": 99})  # a duplicate id: another kind of problem
    for category in record["categories"]:
        category["image_count"] = 3  # this file's count, under the full dataset's frequency 'f'
    ann.write_text(json.dumps(record))
    report = check_report(ann, data / "coco" / "val2017", check_images=True)
    assert list(report.groups)[0] == "missing image" and len(report.notes) == 1
    assert "categories[].frequency" not in report.groups and "frequency comes from the full" in report.notes[0]
    code = main(["data", "check", "lvis-v0.5", "--root", str(data), "--split", "val", "--examples", "1"])
    out = capsys.readouterr().out.splitlines()
    assert code == 1 and out[1] == "missing image: 1" and "000000000004.jpg" in out[2]
    assert any(line.startswith("note: 1 categories have an image_count") for line in out)


# ------------------------------------------------------------------------------- weights

@pytest.mark.parametrize("fault", ["corrupt init weights", "zero-byte train annotations", "duplicate image id"])
def test_an_error_after_the_store_opens_leaves_no_run_folder_and_no_lock(tmp_path, fault):
    """A run that fails before its first checkpoint leaves the run store as it was found: no folder holding
    only data.json, no lock file."""
    from acsl.data import AnnotationError

    data = _lvis_layout(tmp_path / "data")
    detector = dict(TINY)
    train_json = data / "lvis_v0.5" / "annotations" / "lvis_v0.5_train.json"
    if fault == "corrupt init weights":
        weights = tmp_path / "init.pth"
        weights.write_bytes(b"not a checkpoint" * 100)
        detector["init"], error = str(weights), WeightsFileError
    elif fault == "zero-byte train annotations":
        train_json.write_bytes(b"")
        error = AnnotationError
    else:
        record = json.loads(train_json.read_text())
        record["images"][1]["id"] = record["images"][0]["id"]
        train_json.write_text(json.dumps(record))
        error = AnnotationError
    store = RunStore(tmp_path / "runs", data_root=data, progress=False)
    with pytest.raises(error):
        store.metrics(baseline_spec("lvis-v0.5", detector=detector))
    assert [p for p in (tmp_path / "runs").rglob("*") if p.is_file()] == []


def test_a_corrupt_weights_file_gives_a_clear_error(tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "_hub_dir", str(hub))
    model = build_detector(DetectorConfig(backbone="narrow_resnet", fpn_channels=64), 2, build_loss("bce", 2))
    cached = hub / "checkpoints" / "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"<html>not a checkpoint</html>" * 10)
    with pytest.raises(WeightsFileError, match=rf"{cached}.*corrupt or truncated.*delete it.*--detector init=PATH"):
        load_detector_init(model, "torchvision-coco")
    truncated = tmp_path / "init.pth"
    torch.save(model.state_dict(), truncated)
    truncated.write_bytes(truncated.read_bytes()[:1000])
    with pytest.raises(WeightsFileError, match=rf"{truncated} are corrupt or truncated") as raised:
        load_detector_init(model, str(truncated))
    cause = " ".join(str(raised.value.__cause__).split())
    assert cause in " ".join(str(raised.value).split())  # torch's whole explanation, not its first 160 characters
    cached.unlink()

    def offline(*_args, **_kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", offline)
    with pytest.raises(WeightsFileError, match=rf"into {hub / 'checkpoints'} .*--detector init=PATH"):
        load_detector_init(model, "torchvision-coco")


# ------------------------------------------------------------------------------- the cache's size

def test_cache_size_estimate_is_close_and_a_too_large_cache_is_refused(smoke_train, tmp_path):
    spec = ExperimentSpec("smoke")
    model = build_model(spec, smoke_train)
    with pytest.raises(CacheTooLargeError, match=r"about .* GiB, above the limit"):
        build_roi_cache(model, smoke_train, tmp_path / "refused", device="cpu", progress=False, limit_gb=1e-6)
    assert not (tmp_path / "refused").exists() and not (tmp_path / "refused.partial").exists()
    for flips in (True, False):
        cache = build_roi_cache(model, smoke_train, tmp_path / f"cache{flips}", device="cpu", progress=False,
                                flips=flips)
        measured = sum(p.stat().st_size for p in cache.root.iterdir() if p.name != "meta.json")
        estimate = estimate_cache_bytes(len(smoke_train), 32, 256, flips)
        assert abs(estimate - measured) <= 0.2 * measured, (estimate, measured)
        assert (cache.rows(3, True) == cache.rows(3, False)).all() != flips


# ------------------------------------------------------------------------------- Open Images

def test_openimages_profile_trains_and_evaluates_on_the_challenge_files(tmp_path):
    data = openimages_layout(tmp_path / "data")
    spec = ExperimentSpec("openimages", "bce", batch_size=2, max_iters=2, detector=TINY)
    store = RunStore(tmp_path / "runs", data_root=data, progress=False)
    train_set, val_set, val_json = store.datasets(spec)
    assert train_set.num_classes == 3 and len(train_set) == len(val_set) == 6
    assert train_set.lvis.dataset["hierarchy"] == {"1": [], "2": [1], "3": []}  # cat under animal
    assert val_json.name == "openimages_val.json" and val_json.parent.name == "lvis-format"
    record = store.metrics(spec)
    assert set(record["metrics"]) == {"AP50_OI"} and load_checkpoint(store.run_dir(spec) / "checkpoint.pt")["iteration"] == 2
    assert json.loads((store.run_dir(spec) / DATA_RECORD).read_text())["data"]["train"]["images"] == "openimages/images/train"
    stamp = val_json.stat().st_mtime_ns
    RunStore(tmp_path / "runs", data_root=data, progress=False).datasets(spec)
    assert val_json.stat().st_mtime_ns == stamp  # converted once


def test_a_bounded_runs_printed_metrics_are_marked_as_a_pipeline_check(smoke_bench, tmp_path, capsys):
    command = ["eval", "--profile", "smoke", "--max-iters", "2", "--subset", "8", "--run-store", str(tmp_path / "runs"),
               "--data-root", str(smoke_bench.root.parent), "--no-progress"]
    assert main(command) == 0
    out, err = capsys.readouterr()
    assert "AP" in json.loads(out)
    assert "acsl eval: a pipeline check (max_iters 2, subset 8): it shows that the pipeline runs; its numbers are not results" in err


def test_an_edit_in_place_that_keeps_size_and_mtime_is_seen(tmp_path):
    """The cached digest is trusted on size, mtime, ctime and inode: an edit that keeps the size and restores
    the modification time still changes the change time, so the digest is computed again."""
    import os

    path = tmp_path / "lvis_v0.5_train.json"
    path.write_text('{"categories": [1]}')
    first = file_sha256(path)
    stamp = path.stat()
    time.sleep(0.01)
    path.write_text('{"categories": [2]}')  # same size
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # modification time restored
    assert path.stat().st_size == stamp.st_size and path.stat().st_mtime_ns == stamp.st_mtime_ns
    assert file_sha256(path) != first
    assert json.loads((tmp_path / ("lvis_v0.5_train.json" + DIGEST_SUFFIX)).read_text())["inode"] == path.stat().st_ino


def test_missing_images_are_refused_before_training_naming_every_layout_tried(tmp_path):
    """A missing val image used to fail after all of training; now the run is refused when its datasets load,
    with the count, the image id and every path tried (v0.5's 2014 name, then the 2017 name)."""
    from acsl.data import ImagesMissingError

    data = _lvis_layout(tmp_path / "data", images=6, missing=4)
    store = RunStore(tmp_path / "runs", data_root=data, progress=False)
    spec = baseline_spec("lvis-v0.5", detector=dict(TINY))
    with pytest.raises(ImagesMissingError) as refused:
        store.metrics(spec)
    message = str(refused.value)
    assert message.startswith("1 of the 6 images of ") and "lvis_v0.5_train.json are missing under" in message
    assert "image id 4: tried " in message
    assert "COCO_train2014_000000000004.jpg" in message and str(data / "coco" / "train2017" / "000000000004.jpg") in message
    assert [p for p in (tmp_path / "runs").rglob("*") if p.is_file()] == []  # refused before anything was written
    # a subset run reads (and checks) only its first images
    from dataclasses import replace

    train_set, val_set, _ = store.datasets(replace(spec, subset=3))
    assert len(train_set) == len(val_set) == 3
