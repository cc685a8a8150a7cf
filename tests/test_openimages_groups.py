"""ACSL's frequency groups and EQL's tail on the Open Images track (acsl.data.openimages_groups): counts on the
ancestor-expanded labels, in the real Challenge 2019 shares, in the synthetic generator, the converter of the
real files and the dataset the losses read; and runs under the old groups never returned."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import openimages_layout

from acsl.data import generate_benchmark
from acsl.data.hierarchy import ClassHierarchy
from acsl.data.lvis_dataset import LVISDetection
from acsl.data.openimages_groups import (challenge_group_shares, expanded_counts, group_rule_note, groups_by_quantile,
                                         openimages_groups)
from acsl.data.openimages_lvis import openimages_lvis_files
from acsl.data.openimages_synthetic import write_openimages_style
from acsl.data.validate import AnnotationError
from acsl.losses import build_loss
from acsl.profiles import get_profile
from acsl.runs import baseline_spec, decoupled_spec, method_spec


def _images_per_class(data: dict) -> dict[int, set[int]]:
    images = defaultdict(set)
    for annotation in data["annotations"]:
        images[annotation["category_id"]].add(annotation["image_id"])
    return images


def _descendants(data: dict) -> dict[int, set[int]]:
    hierarchy = ClassHierarchy.from_category_json(data["hierarchy"])
    return {c["id"]: set(hierarchy.descendants(c["id"])) for c in data["categories"]}


@pytest.fixture(scope="module", params=["oi-smoke", "oi-quick"])
def oi_train(request, tmp_path_factory) -> dict:
    """The train file of the synthetic Open Images track at each CPU scale (quick: 1000 images, ~10 s)."""
    bench = generate_benchmark(tmp_path_factory.mktemp(request.param) / "bench", get_profile(request.param).data,
                               progress=False)
    train, _ = write_openimages_style(bench)
    return json.loads(train.read_text())


def test_every_parents_count_includes_its_descendants_images(oi_train):
    images, below = _images_per_class(oi_train), _descendants(oi_train)
    parents = [c for c in oi_train["categories"] if below[c["id"]]]
    assert parents
    for category in oi_train["categories"]:
        expected = set(images[category["id"]]).union(*(images[d] for d in below[category["id"]]))
        assert category["image_count"] == len(expected), category["name"]
        boxes = sum(1 for a in oi_train["annotations"] if a["category_id"] in below[category["id"]] | {category["id"]})
        assert category["instance_count"] == boxes, category["name"]
    # a parent is present wherever a child is, so it is never in fewer images than any child
    for parent in parents:
        assert all(parent["image_count"] >= len(images[d]) for d in below[parent["id"]])


def test_the_synthetic_tracks_group_shares_equal_the_real_challenge_shares_within_one_class(oi_train):
    shares = challenge_group_shares()
    categories = oi_train["categories"]
    for group in "rcf":
        in_group = sum(c["frequency"] == group for c in categories)
        assert abs(in_group - shares[group] * len(categories)) <= 1, (group, in_group, len(categories))
    # the fewest images are the tail: no frequent class is in fewer images than a rare or common one
    tail = [c["image_count"] for c in categories if c["frequency"] != "f"]
    assert all(c["image_count"] >= max(tail) for c in categories if c["frequency"] == "f") if tail else True


def test_the_real_challenge_shares_are_lviss_rule_on_its_500_classes():
    # data/stats/openimages_train_classes.csv: no class with <= 10 boxes, 10 with <= 100 (all leaves: household
    # objects from Pressure cooker, 14, to Light switch, 97)
    assert challenge_group_shares() == pytest.approx({"r": 0.0, "c": 10 / 500, "f": 490 / 500})


def test_groups_by_quantile_rank_by_images_then_boxes_then_id():
    images = {1: 5, 2: 5, 3: 1, 4: 9, 5: 5}
    boxes = {1: 7, 2: 6, 3: 1, 4: 9, 5: 6}
    groups = groups_by_quantile(images, boxes, {"r": 0.2, "c": 0.4, "f": 0.4})
    assert groups == {3: "r", 2: "c", 5: "c", 1: "f", 4: "f"}  # 1 rare, round(0.6 · 5) − 1 = 2 common
    assert set(openimages_groups(images, boxes).values()) == {"f"}  # 2 % of 5 classes: none rare or common
    with pytest.raises(ValueError, match="same categories"):
        groups_by_quantile(images, {1: 1}, {"r": 0, "c": 0, "f": 1})


def test_expanded_counts_count_each_image_once_per_ancestor():
    hierarchy = ClassHierarchy({1: [], 2: [1], 3: [2]})  # 3 under 2 under 1
    annotations = [{"image_id": 10, "category_id": 3}, {"image_id": 10, "category_id": 3},
                   {"image_id": 11, "category_id": 2}, {"image_id": 12, "category_id": 1}]
    images, boxes = expanded_counts(annotations, hierarchy, [1, 2, 3, 4])
    assert images == {1: 3, 2: 2, 3: 1, 4: 0}
    assert boxes == {1: 4, 2: 3, 3: 2, 4: 0}


def test_the_dataset_the_losses_read_counts_expanded_labels(tmp_path, oi_train):
    path = tmp_path / "train.json"
    path.write_text(json.dumps(oi_train))
    dataset = LVISDetection(path, tmp_path)
    by_id = {c["id"]: c for c in oi_train["categories"]}
    assert dataset.image_counts == [by_id[c]["image_count"] for c in dataset.label_to_category_id]
    assert dataset.instance_counts == [by_id[c]["instance_count"] for c in dataset.label_to_category_id]
    hierarchy = ClassHierarchy.from_category_json(oi_train["hierarchy"])
    first = next(a for a in oi_train["annotations"] if hierarchy.ancestors(a["category_id"]))
    labels = dataset.image_labels[dataset.image_ids.index(first["image_id"])]
    parent = dataset.category_id_to_label[next(iter(hierarchy.ancestors(first["category_id"])))]
    assert parent in labels  # class-aware sampling draws a parent's images from its children's too
    broken = {**oi_train, "hierarchy": {**oi_train["hierarchy"], str(first["category_id"]): [99999]}}
    path.write_text(json.dumps(broken))
    with pytest.raises(AnnotationError, match="'hierarchy' names category ids that are not in 'categories': \\[99999\\]"):
        LVISDetection(path, tmp_path)


def test_eql_on_the_track_takes_its_tail_from_the_groups():
    frequencies = ("r", "c", "f", "f")
    loss = build_loss("eql", 4, frequencies, class_image_counts=(1, 500, 2, 900), num_images=1000, tail_from_groups=True)
    assert loss.tail_columns.tolist() == [False, True, True, False, False]  # column 0 is background
    by_lambda = build_loss("eql", 4, frequencies, class_image_counts=(1, 500, 2, 900), num_images=1000, lambda_=0.01)
    assert by_lambda.tail_columns.tolist() == [False, True, False, True, False]
    with pytest.raises(ValueError, match="tail_from_groups=True needs class_frequencies"):
        build_loss("eql", 4, None, class_image_counts=(1, 1, 1, 1), num_images=10, tail_from_groups=True)
    for profile in ("oi-smoke", "oi-quick", "openimages"):
        assert dict(method_spec(profile, "Equalization Loss").loss_options) == {"tail_from_groups": True}
    assert "tail_from_groups" not in dict(method_spec("quick", "EQL").loss_options)


def test_runs_under_the_old_groups_are_never_returned(monkeypatch):
    import acsl.runs.spec as spec_module

    specs = (baseline_spec("oi-quick"), decoupled_spec("oi-quick", "acsl", xi=0.7, cached=True),
             method_spec("oi-quick", "Equalization Loss"))
    for spec in specs:
        assert spec.resolved()["openimages"] == {"style": spec_module.STYLE_VERSION, "groups": spec_module.GROUP_RULE}
    before = [spec.hash for spec in specs]
    monkeypatch.setattr(spec_module, "GROUP_RULE", "another rule")
    assert all(replace(spec).hash != old for spec, old in zip(specs, before))  # a fresh spec: not the cached hash
    assert "openimages" not in baseline_spec("quick").resolved()  # the LVIS track keeps its hashes
    real = baseline_spec("openimages").resolved()["openimages"]  # the real files: the converter's version
    assert real == {"convert": spec_module.CONVERT_VERSION, "groups": "another rule"}


def test_the_rule_note_states_the_shares_and_what_they_give():
    categories = [{"frequency": "f", "image_count": 50}] * 67 + [{"frequency": "c", "image_count": 2}]
    note = group_rule_note(categories)
    assert "0% rare, 2% common, 98% frequent" in note and "here 0 rare, 1 common, 67 frequent of 68" in note
    assert "at most 2 training images" in note


def test_the_converter_of_the_real_files_counts_expanded_labels(tmp_path):
    (train_path, _), (val_path, _) = openimages_lvis_files(openimages_layout(tmp_path / "data"))
    train, val = json.loads(Path(train_path).read_text()), json.loads(Path(val_path).read_text())
    by_name = {c["name"]: c for c in train["categories"]}
    # 6 images: cat in 3, car in 3; animal has no box of its own but is the parent of cat
    assert by_name["Animal"]["image_count"] == by_name["Cat"]["image_count"] == 3
    assert {c["frequency"] for c in train["categories"]} == {"f"}  # 2 % of 3 classes: none rare or common
    assert [c["image_count"] for c in val["categories"]] == [c["image_count"] for c in train["categories"]]
