"""Bad inputs are refused before work starts, with an error that names the file, field or option and the
value, and nothing is left behind: the command line, annotation files, images, detections, loss inputs,
Open Images files and run-store faults (kill -9, a full disk, truncated records)."""

from __future__ import annotations

import copy
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from acsl.cli.main import main
from acsl.config import TrainConfig
from acsl.data import AnnotationError, ImageReadError, LVISDetection
from acsl.data.check import check_lvis
from acsl.data.openimages import (OpenImagesFormatError, read_boxes, read_class_descriptions, read_image_labels,
                                  read_openimages)
from acsl.engine.checkpoint import atomic_torch_save, load_checkpoint
from acsl.engine.loop import StepOutput, TrainLoop
from acsl.evaluation import evaluate_lvis
from acsl.io import atomic_write_json, remove_stale_temporaries
from acsl.losses import build_loss
from acsl.runs import RunStore, baseline_spec
from acsl.runs.store import read_record, read_timings


def leftovers(root: Path) -> list[Path]:
    """Temporaries and partial outputs under ``root``: what an interrupted or refused job must not leave."""
    return [p for p in Path(root).rglob("*") if p.name.endswith((".tmp", ".partial")) or ".tmp-" in p.name]


# ------------------------------------------------------------------------------------------------ CLI

CLI_CASES = [
    (["--detector", "nms_thresh=abc"], ["nms_thresh", "'abc'"]),
    (["--detector", "min_size=abc"], ["min_size", "'abc'"]),
    (["--detector", "nms_thresh=1.5"], ["nms_thresh", "1.5"]),
    (["--detector", "anchor_sizes=8,x"], ["anchor_sizes", "'x'"]),
    (["--detector", "pretrained_backbone=maybe"], ["pretrained_backbone", "'maybe'"]),
    (["--detector", "max_size=20"], ["max_size", "20"]),
    (["--detector", "depth=3"], ["unknown detector field", "depth"]),
    (["--detector", "backbone=vgg"], ["backbone", "'vgg'"]),
    (["--loss", "acsl", "--stage", "2", "--option", "common_fraction=abc"], ["common_fraction", "'abc'"]),
    (["--loss", "acsl", "--stage", "2", "--option", "xi=1.5"], ["xi", "1.5"]),
    (["--loss", "acsl", "--stage", "2", "--option", "statistic_free=maybe"], ["statistic_free", "'maybe'"]),
    (["--loss", "focal", "--option", "gamma=-1"], ["gamma", "-1"]),
    (["--loss", "bce", "--option", "gamma=2"], ["gamma=2", "bce"]),
    (["--loss", "magic"], ["unknown loss", "'magic'"]),
    (["--sampler", "repeat_factor", "--sampler-option", "threshold=abc"], ["threshold", "'abc'"]),
    (["--sampler", "repeat_factor", "--sampler-option", "threshold=-1"], ["threshold", "-1"]),
    (["--sampler-option", "threshold=0.1"], ["uniform", "threshold=0.1"]),
    (["--batch-size", "100000"], ["batch_size", "100000", "24 images"]),
    (["--batch-size", "0"], ["batch_size", "0"]),
    (["--schedule", "0"], ["schedule", "0"]),
    (["--classifier", "lws"], ["classifier", "'lws'"]),
    (["--option", "noequals"], ["noequals", "key=value"]),
]


@pytest.mark.parametrize("command", ["train", "eval"])
@pytest.mark.parametrize("arguments,named", CLI_CASES, ids=[" ".join(a) for a, _ in CLI_CASES])
def test_a_bad_command_line_is_refused_before_anything_is_created(tmp_path, capsys, command, arguments, named):
    runs, data = tmp_path / "runs", tmp_path / "data"
    status = main([command, "--profile", "smoke", "--run-store", str(runs), "--data-root", str(data), *arguments])
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith(f"acsl {command}: error: "), err
    for word in named:
        assert word in err, (word, err)
    assert not runs.exists() and not data.exists()  # no run directory, no data generated
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------- annotation files

def _good_lvis() -> dict:
    return {
        "images": [{"id": 1, "width": 16, "height": 12, "file_name": "a.png", "neg_category_ids": [2],
                    "not_exhaustive_category_ids": []},
                   {"id": 2, "width": 16, "height": 12, "file_name": "b.png", "neg_category_ids": []}],
        "categories": [{"id": 1, "name": "cat", "frequency": "r"}, {"id": 2, "name": "dog", "frequency": "f"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 3], "area": 12.0},
                        {"id": 2, "image_id": 2, "category_id": 2, "bbox": [0, 0, 8, 8], "area": 64.0}],
    }


@pytest.fixture
def lvis_files(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (16, 12), (10, 200, 30)).save(images / name)
    return tmp_path, images


ANNOTATION_CASES = [
    (lambda d: d["annotations"][0].pop("area"), "annotations[0].area", "missing"),
    (lambda d: d["annotations"][1].update(area=-5), "annotations[1].area", "-5"),
    (lambda d: d["annotations"][1].update(area="big"), "annotations[1].area", "'big'"),
    (lambda d: d["images"][1].update(id=1), "images[1].id", "duplicate image id 1"),
    (lambda d: d["annotations"][1].update(id=1), "annotations[1].id", "duplicate annotation id 1"),
    (lambda d: d["annotations"][0].update(bbox=[5, 5, -2, 3]), "annotations[0].bbox", "[5, 5, -2, 3]"),
    (lambda d: d["annotations"][0].update(bbox=[1, 1, 4]), "annotations[0].bbox", "[1, 1, 4]"),
    (lambda d: d["annotations"][0].update(category_id=9), "annotations[0].category_id", "9"),
    (lambda d: d["images"][0].update(neg_category_ids=[7]), "images[0].neg_category_ids", "[7]"),
    (lambda d: d["images"][0].update(neg_category_ids=[1]), "images[0].neg_category_ids", "[1]"),
    (lambda d: d["categories"][0].update(frequency="x"), "categories[0].frequency", "'x'"),
    (lambda d: d["categories"][1].update(id="2"), "categories[1].id", "'2'"),
    (lambda d: d["images"][0].update(width=0), "images[0].width", "0"),
    (lambda d: d["categories"].clear(), "categories", "empty list"),
    (lambda d: d.update(annotations={}), "annotations", "dict"),
    # a box wholly or far outside its 16 × 12 image: named with its annotation, box and the image size
    (lambda d: d["annotations"][0].update(bbox=[500, 500, 40, 40]), "annotations[0].bbox", "annotation id 1: box [500, 500, 40, 40] extends 528 px beyond its image (id 1, 16 × 12)"),
    (lambda d: d["annotations"][1].update(bbox=[-3, 0, 8, 8]), "annotations[1].bbox", "extends 3 px beyond its image (id 2, 16 × 12); at most 1 px"),
]


@pytest.mark.parametrize("mutate,field,value", ANNOTATION_CASES, ids=[c[1] + ":" + c[2] for c in ANNOTATION_CASES])
def test_a_bad_annotation_file_is_refused_by_the_loader_and_reported_by_data_check(lvis_files, mutate, field, value):
    root, images = lvis_files
    data = copy.deepcopy(_good_lvis())
    mutate(data)
    ann = root / "ann.json"
    ann.write_text(json.dumps(data))
    problems = check_lvis(ann, images)
    assert problems and problems[0].field == field and value in problems[0].message, problems
    with pytest.raises(AnnotationError) as refused:
        LVISDetection(ann, images)
    # One validator: the loader refuses with exactly the first problem that `data check` reports.
    assert str(refused.value) == f"{ann}: field {field!r}: {problems[0].message}"
    assert leftovers(root) == []


def test_data_check_reports_every_problem_the_loader_refuses_at_the_first(lvis_files):
    root, images = lvis_files
    data = _good_lvis()
    del data["annotations"][0]["area"]
    data["annotations"][1]["id"] = 1
    data["categories"][0]["frequency"] = "x"
    ann = root / "ann.json"
    ann.write_text(json.dumps(data))
    fields = [p.field for p in check_lvis(ann, images)]
    assert fields == ["categories[0].frequency", "annotations[0].area", "annotations[1].id"]
    with pytest.raises(AnnotationError, match=r"categories\[0\]\.frequency"):
        LVISDetection(ann, images)


def test_data_check_on_the_command_line_names_a_missing_area(tmp_path, capsys):
    folder = tmp_path / "lvis_v1" / "annotations"
    folder.mkdir(parents=True)
    data = _good_lvis()
    for image in data["images"]:
        image["coco_url"] = f"http://images.cocodataset.org/val2017/{image.pop('file_name')}"
    del data["annotations"][1]["area"]
    (folder / "lvis_v1_val.json").write_text(json.dumps(data))
    status = main(["data", "check", "lvis-v1", "--root", str(tmp_path)])
    out = capsys.readouterr().out
    # grouped by kind (the file in the heading, then each problem's field)
    assert status == 1 and "lvis_v1_val.json: 3 problems" in out and "annotations[1].area: missing" in out


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", "null", ""])
def test_an_unparseable_annotation_file_is_named(lvis_files, content):
    root, images = lvis_files
    ann = root / "ann.json"
    ann.write_text(content)
    with pytest.raises(AnnotationError, match="ann.json"):
        LVISDetection(ann, images)
    assert check_lvis(ann, images)[0].file == str(ann)


# ------------------------------------------------------------------------------------------------ images

IMAGE_CASES = [
    (lambda p: p.unlink(), "not found"),
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n not a png"), "cannot"),
    (lambda p: p.write_bytes(p.read_bytes()[:30]), "cannot"),
    (lambda p: Image.new("RGB", (5, 7)).save(p), "5x7"),
]


@pytest.mark.parametrize("damage,words", IMAGE_CASES, ids=["missing", "not-an-image", "truncated", "wrong-size"])
def test_a_bad_image_is_named_by_the_loader_and_data_check(lvis_files, damage, words):
    root, images = lvis_files
    ann = root / "ann.json"
    ann.write_text(json.dumps(_good_lvis()))
    damage(images / "b.png")
    dataset = LVISDetection(ann, images)
    dataset[0]  # the good image reads
    with pytest.raises(ImageReadError) as refused:
        dataset[1]
    assert str(images / "b.png") in str(refused.value) and words in str(refused.value)
    (problem,) = check_lvis(ann, images, check_images="all")
    assert problem.field == "images[1].file_name" and "image id 2" in problem.message
    assert leftovers(root) == []


# ------------------------------------------------------------------------------------------- detections

def _truth() -> dict:
    return {"images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "area": 1600.0}],
            "categories": [{"id": 1, "name": "a", "frequency": "f"}, {"id": 2, "name": "b", "frequency": "r"}]}


def _det(**changes) -> dict:
    return {"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.5, **changes}


DETECTION_CASES = [
    (None, [_det(bbox=[50, 50, -40, 10])], ValueError, r"detections\[0\].*negative width or height.*\[50, 50, -40, 10\]"),
    (None, [_det(), _det(bbox=[10, 60, 40, -50])], ValueError, r"detections\[1\].*negative.*x1, y1, x2, y2"),
    (None, [_det(score=math.nan)], ValueError, r"detections\[0\]\['score'\].*nan"),
    (None, [_det(bbox=[1, 2, 3])], ValueError, r"detections\[0\]\['bbox'\].*\[1, 2, 3\]"),
    (None, [_det(image_id=99)], ValueError, "unknown image_id 99"),
    (None, [_det(category_id=77)], ValueError, "unknown category_id 77"),
    (lambda t: t["images"].append({"id": 1, "width": 5, "height": 5}), [_det()], ValueError, r"images\[2\].*image id 1"),
    (lambda t: t["annotations"].append(dict(t["annotations"][0])), [_det()], ValueError,
     r"annotations\[1\].*annotation id 1"),
    (lambda t: t["categories"].clear(), [], ValueError, "empty 'categories'"),
    (lambda t: t["annotations"][0].pop("area"), [_det()], ValueError, r"annotations\[0\].*area None"),
    (lambda t: t["categories"][1].update(frequency="rare"), [_det()], ValueError, "frequency 'rare'"),
]


@pytest.mark.parametrize("mutate,detections,error,pattern", DETECTION_CASES, ids=[c[3] for c in DETECTION_CASES])
def test_bad_detections_or_ground_truth_are_refused_by_the_evaluator(mutate, detections, error, pattern):
    truth = _truth()
    if mutate is not None:
        mutate(truth)
    with pytest.raises(error, match=pattern):
        evaluate_lvis(truth, detections)


def test_good_detections_still_score():
    assert evaluate_lvis(_truth(), [_det()])["AP"] == pytest.approx(1.0)
    assert evaluate_lvis(_truth(), [_det(bbox=[50, 50, 10, 10])])["AP"] == pytest.approx(0.0)


# ------------------------------------------------------------------------------------------- loss inputs

def _loss(name: str):
    return build_loss(name, 3, ("r", "c", "f"), class_image_counts=(5, 3, 1), class_instance_counts=(9, 4, 1),
                      num_images=6)


LOSS_CASES = [
    ("seesaw", lambda n: torch.tensor([0, -1, 2]), None, ValueError, ["labels must lie in 0..3", "[-1]"]),
    ("bags", lambda n: torch.tensor([-2, 1, 2]), None, ValueError, ["labels must lie in 0..3", "[-2]"]),
    ("softmax_ce", lambda n: torch.tensor([0, 4, 1]), None, ValueError, ["labels must lie in 0..3", "[4]"]),
    ("acsl", lambda n: torch.tensor([7, 1, 2]), None, ValueError, ["labels must lie in 0..3", "[7]"]),
    ("eqlv2", lambda n: torch.tensor([0.0, 1.0, 2.0]), None, ValueError, ["integer class indices", "float32"]),
    ("bce", lambda n: torch.tensor([0, 1, 2]), math.nan, FloatingPointError, ["1 non-finite", "RoI 1"]),
    ("acsl", lambda n: torch.tensor([0, 1, 2]), math.inf, FloatingPointError, ["non-finite", "RoI 1"]),
    ("focal", lambda n: torch.tensor([0, 1]), None, ValueError, ["labels must have shape [3]", "(2,)"]),
]


@pytest.mark.parametrize("name,labels,poison,error,words", LOSS_CASES,
                         ids=[f"{c[0]}-{c[4][0][:12]}" for c in LOSS_CASES])
def test_a_loss_refuses_labels_outside_the_classes_and_non_finite_logits(name, labels, poison, error, words):
    loss = _loss(name)
    logits = torch.randn(3, loss.num_logits, requires_grad=True)
    if poison is not None:
        logits = logits.detach().clone()
        logits[1, 2] = poison
    with pytest.raises(error) as refused:
        loss(logits, labels(loss.num_classes))
    for word in words:
        assert word in str(refused.value), (word, str(refused.value))


def test_a_good_batch_and_an_empty_batch_still_give_a_loss():
    for name in ("seesaw", "bags", "acsl", "bce"):
        loss = _loss(name)
        assert torch.isfinite(loss(torch.randn(4, loss.num_logits), torch.tensor([0, 1, 2, 3])))
        assert loss(torch.zeros(0, loss.num_logits), torch.zeros(0, dtype=torch.long)).item() == 0.0


# ------------------------------------------------------------------------------------------- Open Images

CLASSES = "/m/cat,Cat\n/m/car,Car\n"
HEADER = "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf\n"
OPENIMAGES_CASES = [
    ("boxes", HEADER + "img1,x,/m/cat,1,abc,0.5,0.2,0.6,0,0,0\n", "line 2, column XMin", "'abc'"),
    ("boxes", HEADER + "img1,x,/m/cat,1,0.6,0.5,0.2,0.6,0,0,0\n", "line 2, column XMax", "'0.5'"),
    ("boxes", HEADER + "img1,x,/m/cat,1,0.1,0.5,0.2,0.6,0,0,0\nimg1,x,/m/dog,1,0.1,0.5,0.2,0.6,0,0,0\n",
     "line 3, column LabelName", "'/m/dog'"),
    ("boxes", HEADER + "img1,x,/m/cat,1,0.1,0.5,0.2,0.6,0,0,2\n", "line 2, column IsGroupOf", "'2'"),
    ("boxes", "ImageID,LabelName,XMin,XMax\nimg1,/m/cat,0.1,0.2\n", "line 1", "YMin"),
    ("classes", "/m/cat,Cat\n/m/cat,Kitten\n", "line 2, column LabelName", "'/m/cat'"),
    ("classes", "/m/cat\n", "line 1", "'/m/cat'"),
    ("labels", "ImageID,Source,LabelName,Confidence\nimg1,v,/m/cat,0.5\n", "line 2, column Confidence", "'0.5'"),
]


@pytest.mark.parametrize("kind,text,where,value", OPENIMAGES_CASES, ids=[f"{c[0]}-{c[2]}" for c in OPENIMAGES_CASES])
def test_a_malformed_open_images_file_is_named_with_line_column_and_value(tmp_path, kind, text, where, value):
    path = tmp_path / f"{kind}.csv"
    path.write_text(text)
    classes = {"/m/cat": "Cat", "/m/car": "Car"}
    read = {"boxes": lambda: read_boxes(path, classes), "classes": lambda: read_class_descriptions(path),
            "labels": lambda: read_image_labels(path, classes)}[kind]
    with pytest.raises(OpenImagesFormatError) as refused:
        read()
    message = str(refused.value)
    assert str(path) in message and where in message and value in message, message


def test_missing_open_images_files_are_named(tmp_path):
    (tmp_path / "classes.csv").write_text(CLASSES)
    with pytest.raises(FileNotFoundError, match="h.json"):
        read_openimages(tmp_path / "boxes.csv", tmp_path / "classes.csv", tmp_path / "h.json", tmp_path)
    (tmp_path / "h.json").write_text(json.dumps({"LabelName": "/m/0bl9f", "Subcategory": [
        {"LabelName": "/m/cat"}, {"LabelName": "/m/car"}]}))
    with pytest.raises(FileNotFoundError, match="boxes.csv"):
        read_openimages(tmp_path / "boxes.csv", tmp_path / "classes.csv", tmp_path / "h.json", tmp_path)
    (tmp_path / "h.json").write_text("{")
    with pytest.raises(ValueError, match="h.json"):
        read_openimages(tmp_path / "boxes.csv", tmp_path / "classes.csv", tmp_path / "h.json", tmp_path)


# ------------------------------------------------------------------------------------------ run store

def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_temporaries_of_a_killed_process_are_removed_when_the_store_opens(tmp_path):
    run = tmp_path / "runs" / "smoke_stage1_softmax_ce_1x_seed0-0123456789abcdef"
    run.mkdir(parents=True)
    dead = _dead_pid()
    stale = [run / f".checkpoint.pt.pid{dead}-a1b2.tmp", tmp_path / "runs" / f".index.json.pid{dead}-x.tmp",
             run / ".timing.json.legacy.tmp"]
    live = [run / f".metrics.json.pid{os.getpid()}-zz.tmp", run / ".log.jsonl.fresh.tmp"]
    for path in stale + live:
        path.write_bytes(b"half")
    old = time.time() - 2 * 3600
    os.utime(run / ".timing.json.legacy.tmp", (old, old))
    RunStore(tmp_path / "runs", data_root=tmp_path / "data", progress=False, device="cpu")
    assert [p for p in stale if p.exists()] == [] and all(p.exists() for p in live)


def test_a_killed_generator_leaves_nothing_behind_for_good(smoke_bench):
    from dataclasses import replace

    from acsl.data import generate_benchmark
    from acsl.profiles import get_profile

    stale = smoke_bench.root.parent / f".{smoke_bench.root.name}.tmp-pid{_dead_pid()}-k9"
    (stale / "train").mkdir(parents=True)
    generate_benchmark(smoke_bench.root, replace(get_profile("smoke").data, seed=0), progress=False)
    assert not stale.exists()


def test_a_full_disk_while_saving_a_checkpoint_names_the_path_and_the_cause(tmp_path, monkeypatch):
    path = tmp_path / "run" / "checkpoint.pt"
    atomic_torch_save({"epoch": 1}, path)

    def full_disk(obj, target, *args, **kwargs):
        Path(target).write_bytes(b"PK\x03\x04 half a zip")
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError) as refused:
        atomic_torch_save({"epoch": 2}, path)
    assert str(path) in str(refused.value) and "disk is full" in str(refused.value) and "MiB free" in str(refused.value)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1  # the previous checkpoint is intact
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("content", ['{"spec": {}, "metrics": {"AP": 1', "", "[]", '{"no": "metrics"}'])
def test_a_corrupt_metrics_record_is_named_moved_aside_and_counts_as_missing(tmp_path, content):
    store = RunStore(tmp_path / "runs", data_root=tmp_path / "data", progress=False, device="cpu")
    spec = baseline_spec("smoke")
    run_dir = store.run_dir(spec)
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text(content)
    if content.startswith('{"no"'):  # valid JSON without metrics: not a record, but not moved either
        assert not store.is_done(spec)
        return
    with pytest.warns(RuntimeWarning, match="metrics.json") as warned:
        assert not store.is_done(spec)
    assert "moved it to metrics.json.corrupt-" in str(warned[0].message)
    assert not (run_dir / "metrics.json").exists() and len(list(run_dir.glob("metrics.json.corrupt-*"))) == 1


def test_a_corrupt_timing_record_or_checkpoint_is_moved_aside(tmp_path, smoke_bench, monkeypatch):
    store = RunStore(tmp_path / "runs", data_root=smoke_bench.root.parent, progress=False, device="cpu")
    spec = baseline_spec("smoke")
    run_dir = store.run_dir(spec)
    run_dir.mkdir(parents=True)
    (run_dir / "timing.json").write_text('{"train_s": 1')
    with pytest.warns(RuntimeWarning, match="timing.json"):
        assert read_timings(run_dir) == {}
    (run_dir / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    trained = []
    monkeypatch.setattr("acsl.runs.store.train", lambda *a, **k: trained.append(a[3]))
    monkeypatch.setattr("acsl.runs.store.load_detector_init", lambda *a, **k: None)  # no pretrained start was trained
    # the fine-tune trains on the start's cached maps and proposals
    monkeypatch.setattr("acsl.engine.proposal_cache.build_proposal_cache", lambda *a, **k: None)
    monkeypatch.setattr("acsl.engine.proposal_cache.train_on_proposal_cache", lambda *a, **k: trained.append(a[4]))
    with pytest.warns(RuntimeWarning, match="checkpoint.pt"):
        store.checkpoint(spec)
    # the run retrains (its pretrained start is asked for first; with train patched out it never finishes)
    assert trained[-1] == run_dir and set(trained[:-1]) == {store.run_dir(spec.parent)}
    assert list(run_dir.glob("checkpoint.pt.corrupt-*"))


def test_json_records_are_strict_and_null_reads_as_undefined(tmp_path):
    run_dir = tmp_path / "run"
    atomic_write_json(run_dir / "metrics.json", {"metrics": {"AP": 1.5, "APr": math.nan}, "per_class_AP": {"3": math.inf}})
    text = (run_dir / "metrics.json").read_text()
    strict = json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} in {text}"))
    assert strict["metrics"]["APr"] is None and strict["per_class_AP"]["3"] is None
    record = read_record(run_dir)
    assert record["metrics"]["AP"] == 1.5 and math.isnan(record["metrics"]["APr"]) and record["timing"] == {}
    assert leftovers(tmp_path) == []


class _Step:
    """A training step whose loss is 1 until ``bad_at``, then what ``bad`` gives (an exploding loss, or
    non-finite logits refused by a loss)."""

    collective, stage, description, log_fields = False, 1, "fake", {}

    def __init__(self, bad_at: int, bad) -> None:
        self.model = torch.nn.Linear(2, 1)
        self.bad_at, self.bad = bad_at, bad

    def parameters(self):
        return list(self.model.parameters())

    def start(self) -> None:
        pass

    def batches(self, epoch: int):
        return list(range(20))

    def run(self, batch: int) -> StepOutput:
        loss = self.model.weight.sum() * 0 + 1.0
        if batch >= self.bad_at:
            loss = loss * self.bad()
        return StepOutput(loss=loss, parts={}, images=1)


TRAINING_CASES = [
    (lambda: 1e6, "loss exploded to 1e+06 at epoch 1, iteration 13", "lower the lr or the batch size"),
    (lambda: math.inf, "loss is inf at epoch 1, iteration 13", "lower the lr"),
    (lambda: _loss("bce")(torch.full((2, 4), math.nan), torch.tensor([0, 1])), "non-finite", "epoch 1, iteration 13"),
]


@pytest.mark.parametrize("bad,stop,fix", TRAINING_CASES, ids=["exploding", "infinite", "nan-logits"])
def test_training_stops_on_an_exploding_or_non_finite_loss_naming_the_iteration(tmp_path, bad, stop, fix):
    config = TrainConfig(epochs=1, batch_size=1, lr=0.01, warmup_iters=0, lr_steps=(), log_every=100)
    loop = TrainLoop(_Step(12, bad), config, tmp_path / "run", 20, seed=0, device=torch.device("cpu"), progress=False)
    with pytest.raises(FloatingPointError) as stopped:
        loop.run()
    assert stop in str(stopped.value) and fix in str(stopped.value), str(stopped.value)
    assert not (tmp_path / "run" / "checkpoint.pt").exists() and leftovers(tmp_path) == []


def test_a_batch_larger_than_a_loaded_training_set_is_refused_before_the_run_dir(tmp_path):
    from acsl.engine import train

    config = TrainConfig(epochs=1, batch_size=8, lr=0.01)
    with pytest.raises(ValueError, match="batch size 8 is larger than the training set .3 images"):
        train(None, [0, 1, 2], config, tmp_path / "run", device="cpu")
    assert not (tmp_path / "run").exists()


def test_the_same_seed_gives_byte_identical_metrics_and_a_corrupt_record_is_recomputed(tmp_path, smoke_bench):
    """Two stores evaluate the same (untrained, seeded) smoke detector: the record is strict JSON without
    wall-clock fields (timing.json holds them); in the second store a truncated record is named, moved aside
    and recomputed, to the same bytes as the first store's."""
    from acsl.runs.store import build_model

    spec = baseline_spec("smoke")
    stores = [RunStore(tmp_path / name, data_root=smoke_bench.root.parent, progress=False, device="cpu")
              for name in ("a", "b")]
    for store in stores:  # a finished checkpoint, without the training (the loop's own tests cover it)
        model = build_model(spec, store.datasets(spec)[0])
        atomic_torch_save({"model": model.state_dict(), "epoch": spec.train_config().epochs},
                          store.run_dir(spec) / "checkpoint.pt")
    record = stores[0].metrics(spec)
    path = stores[0].run_dir(spec) / "metrics.json"
    text = path.read_text()
    stored = json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} in metrics.json"))
    assert "timing" not in stored and set(record["timing"]) == {"eval_s"} and record["num_detections"] > 0
    assert set(json.loads((path.parent / "timing.json").read_text())) == {"eval_s"}
    other = stores[1].run_dir(spec) / "metrics.json"
    other.write_text(text[: len(text) // 2])  # a record cut short (a disk error, a non-atomic copy)
    with pytest.warns(RuntimeWarning, match=re.escape(str(other))):
        again = stores[1].metrics(spec)
    assert other.read_text() == text and again["metrics"] == pytest.approx(record["metrics"], nan_ok=True)
    assert len(list(other.parent.glob("metrics.json.corrupt-*"))) == 1 and leftovers(tmp_path) == []


def test_train_and_val_files_with_other_category_sets_are_refused_before_training(tmp_path, capsys):
    """A train file with one category fewer than the val file would shift every later classifier column onto
    its neighbour's category: refused when the datasets load (before any training), naming the ids, and reported
    by ``acsl data check``."""
    from test_real_data_trust import _lvis_layout

    from acsl.data.categories import CategoryMismatchError

    data = _lvis_layout(tmp_path / "data")
    val_json = data / "lvis_v0.5" / "annotations" / "lvis_v0.5_val.json"
    record = json.loads(val_json.read_text())
    record["categories"].append({"id": 7, "name": "gargoyle", "frequency": "r", "image_count": 1})
    val_json.write_text(json.dumps(record))
    store = RunStore(tmp_path / "runs", data_root=data, progress=False)
    spec = baseline_spec("lvis-v0.5")
    with pytest.raises(CategoryMismatchError, match=r"2 and 3 categories\): 1 only in the val file .*lvis_v0.5_val.json \(7\)"):
        store.datasets(spec)
    with pytest.raises(CategoryMismatchError):
        store.checkpoint(spec)
    assert not list((tmp_path / "runs").rglob("checkpoint*"))  # nothing trained
    code = main(["data", "check", "lvis-v0.5", "--root", str(data), "--split", "train"])
    assert code == 1 and "disagree on the category set" in capsys.readouterr().out


def test_ctrl_c_of_train_prints_one_line_naming_the_checkpoint_and_the_same_command_resumes(tmp_path, monkeypatch, capsys):
    from acsl.engine.loop import TrainLoop

    save = TrainLoop._save

    def interrupted_after_first_epoch(self, epochs_done):
        save(self, epochs_done)
        if self.step.stage == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(TrainLoop, "_save", interrupted_after_first_epoch)
    command = ["train", "--profile", "smoke", "--run-store", str(tmp_path / "runs"), "--data-root", str(tmp_path / "data"),
               "--no-progress"]
    assert main(command) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.fullmatch(r"acsl train: interrupted; the last checkpoint is .*checkpoint\.pt; "
                                          r"the same command resumes from it", err[0]), err
    checkpoint = Path(err[0].split("is ")[1].split(";")[0])
    assert load_checkpoint(checkpoint)["epoch"] == 1
    monkeypatch.setattr(TrainLoop, "_save", save)
    assert main(command) == 0 and load_checkpoint(checkpoint)["epoch"] == 2  # resumed, and finished


def test_a_box_overhanging_its_image_by_less_than_the_tolerance_is_clipped(lvis_files):
    """Up to ``BOX_OVERHANG_PX`` (1 px) beyond the image: accepted, and the loader clips it to the image as
    torchvision's and detectron2's loaders do; a box inside is left as it is."""
    from acsl.data.validate import BOX_OVERHANG_PX

    root, images = lvis_files
    data = _good_lvis()
    data["annotations"][0]["bbox"] = [-0.5, 1, 16.8, 3]  # 0.5 px left of the image, 0.3 px right of it
    path = root / "overhang.json"
    path.write_text(json.dumps(data))
    assert BOX_OVERHANG_PX == 1.0 and check_lvis(path, images) == []
    dataset = LVISDetection(path, images)
    assert dataset.get(0, flip=False)[1]["boxes"].tolist() == [[0.0, 1.0, 16.0, 4.0]]
    assert dataset.get(1, flip=False)[1]["boxes"].tolist() == [[0.0, 0.0, 8.0, 8.0]]
