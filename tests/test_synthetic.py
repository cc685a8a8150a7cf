"""Tests of the synthetic long-tail benchmark (docs/ARCHITECTURE.md, "The synthetic benchmark") and the
category statistics helpers."""

from __future__ import annotations

import json
from dataclasses import replace
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from lvis import LVIS

from acsl.data.stats import load_category_stats as lvis_stats
from acsl.profiles import get_profile
from acsl.data import (
    LVISDetection,
    SyntheticConfig,
    SyntheticDatasetExistsError,
    category_image_counts,
    category_instance_counts,
    frequency_from_image_count,
    generate_benchmark,
    load_category_stats,
)

SMALL = SyntheticConfig(num_categories=12, num_train_images=30, num_val_images=12, image_size=64,
                        seed=1)
SMOKE = SyntheticConfig(num_categories=12, num_train_images=24, num_val_images=12, image_size=64)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


QUICK = get_profile("quick").data


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """The ``quick`` profile's benchmark (60 categories, 1000 + 250 images at 128 px), generated once."""
    root = tmp_path_factory.mktemp("quick") / "bench"
    bench = generate_benchmark(root, replace(QUICK, seed=get_profile("quick").benchmark_seed), progress=False)
    train = json.loads(bench.train_json.read_text())
    val = json.loads(bench.val_json.read_text())
    return bench, train, val


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("small") / "bench"
    return generate_benchmark(root, SMALL, progress=False)


# ------------------------------------------------------------------------------------ stats


def test_load_category_stats():
    df = load_category_stats("lvis_v0.5")
    assert len(df) == 1230
    assert list(df.columns) == ["id", "name", "synset", "frequency", "image_count", "instance_count"]
    # the shipped frequency labels follow LVIS's rule on image counts
    assert (df["image_count"].map(frequency_from_image_count) == df["frequency"]).all()
    assert len(load_category_stats("lvis_v1")) == 1203
    with pytest.raises(ValueError, match="lvis_v0.5"):
        load_category_stats("coco")


@pytest.mark.parametrize("n,f", [(0, "r"), (1, "r"), (10, "r"), (11, "c"), (100, "c"), (101, "f")])
def test_frequency_rule(n, f):
    assert frequency_from_image_count(n) == f


def test_count_helpers():
    js = {
        "categories": [{"id": 1}, {"id": 2}, {"id": 3}],
        "annotations": [
            {"image_id": 1, "category_id": 1}, {"image_id": 1, "category_id": 1},
            {"image_id": 2, "category_id": 1}, {"image_id": 2, "category_id": 2},
        ],
    }
    assert category_image_counts(js) == {1: 2, 2: 1, 3: 0}
    assert category_instance_counts(js) == {1: 3, 2: 1, 3: 0}


# ------------------------------------------------------------------------------------ config


@pytest.mark.parametrize(
    "field,value",
    [("num_categories", 1), ("image_size", 16), ("num_train_images", 0), ("num_val_images", 0),
     ("seed", -1), ("lookalike_fraction", 1.5), ("max_objects_per_image", 0),
     ("num_categories", 2.5), ("num_categories", 10_000)],
)
def test_config_validation(field, value):
    with pytest.raises(ValueError, match=field):
        SyntheticConfig(**{field: value})


# ------------------------------------------------------------------------------------ quick config


def test_quick_loads_with_lvis_api(quick):
    bench = quick[0]
    lv = LVIS(str(bench.train_json))
    assert len(lv.cats) == 60 and len(lv.imgs) == 1000 and len(lv.anns) > 8000
    assert len(LVIS(str(bench.val_json)).imgs) == 250
    ds = LVISDetection(bench.val_json, bench.val_images)
    img, target = ds[0]
    assert img.shape == (3, 128, 128)
    assert len(target["boxes"]) == len(target["labels"]) > 0


def test_frequency_follows_actual_train_counts(quick):
    _, train, _ = quick
    img_counts = category_image_counts(train)
    inst_counts = category_instance_counts(train)
    for c in train["categories"]:
        assert c["image_count"] == img_counts[c["id"]]
        assert c["instance_count"] == inst_counts[c["id"]]
        assert c["frequency"] == frequency_from_image_count(c["image_count"])
        assert c["image_count"] >= 1


def test_quick_split_is_lvis_shaped(quick):
    _, train, val = quick
    shares = Counter(c["frequency"] for c in train["categories"])
    n = len(train["categories"])
    assert 0.25 <= shares["r"] / n <= 0.5, shares
    assert 0.25 <= shares["c"] / n <= 0.5, shares
    assert 0.15 <= shares["f"] / n <= 0.4, shares
    assert val["categories"] == train["categories"]


def _annotation_shares(split: dict) -> dict[str, float]:
    frequency = {c["id"]: c["frequency"] for c in split["categories"]}
    counts = Counter(frequency[a["category_id"]] for a in split["annotations"])
    return {group: 100 * counts[group] / len(split["annotations"]) for group in "rcf"}


def test_quick_training_split_is_as_long_tailed_as_lvis_in_annotations(quick):
    """docs/ARCHITECTURE.md, "The synthetic benchmark": the shares of annotations by group within a factor 1.5
    of LVIS v0.5 train's (0.85 / 8.4 / 90.8 %), at least 8 annotations per image, rare categories in 1–10
    images, and a steep imbalance between the largest and the smallest category."""
    _, train, _ = quick
    lvis = lvis_stats("lvis_v0.5")
    lvis_shares = {g: 100 * lvis.instance_count[lvis.frequency == g].sum() / lvis.instance_count.sum() for g in "rcf"}
    assert lvis_shares["r"] == pytest.approx(0.85, abs=0.01) and lvis_shares["f"] == pytest.approx(90.8, abs=0.1)
    shares = _annotation_shares(train)
    assert shares["r"] <= 1.5 * lvis_shares["r"] and shares["c"] <= 1.5 * lvis_shares["c"], shares
    assert 100 - shares["f"] <= 1.5 * (100 - lvis_shares["f"]), shares
    assert len(train["annotations"]) / len(train["images"]) >= 8
    rare = [c for c in train["categories"] if c["frequency"] == "r"]
    assert rare and all(1 <= c["image_count"] <= 10 for c in rare)
    assert any(c["lookalike_of"] is not None for c in rare)  # the look-alikes stay
    instances = category_instance_counts(train)
    assert max(instances.values()) >= 1000 and min(instances.values()) == 1


def test_every_category_in_val_at_least_3_images(quick):
    _, train, val = quick
    val_counts = category_image_counts(val)
    assert set(val_counts) == {c["id"] for c in train["categories"]}
    assert min(val_counts.values()) >= 3
    # flatter than train: the most/least ratio is much smaller
    tr = category_image_counts(train)
    assert max(val_counts.values()) / min(val_counts.values()) < max(tr.values()) / min(tr.values())


def test_lookalikes(quick):
    _, train, _ = quick
    cats = {c["id"]: c for c in train["categories"]}
    looks = [c for c in cats.values() if c["lookalike_of"] is not None]
    n_rare = sum(c["frequency"] == "r" for c in cats.values())
    assert 1 <= len(looks) <= n_rare
    for c in looks:
        p = cats[c["lookalike_of"]]
        assert p["frequency"] == "f" and c["frequency"] == "r"
        assert (p["shape"], p["color"]) == (c["shape"], c["color"])
        assert p["marking"] == "plain" and c["marking"] in ("dotted", "bordered")
    names = [c["name"] for c in cats.values()]
    assert len(set(names)) == len(names)
    for c in cats.values():
        assert c["synset"] == f"synthetic.{c['name']}.n.01" and c["synonyms"] == [c["name"]]
        assert c["lvis_curve_source"] and isinstance(c["def"], str)


def test_federated_fields_are_honest(quick):
    _, train, val = quick
    for split in (train, val):
        present = defaultdict(set)
        for a in split["annotations"]:
            present[a["image_id"]].add(a["category_id"])
        n_ne = 0
        for im in split["images"]:
            neg = set(im["neg_category_ids"])
            ne = set(im["not_exhaustive_category_ids"])
            assert not neg & present[im["id"]]
            assert 1 <= len(neg) <= 5
            assert ne <= present[im["id"]]  # the hidden instance's category is also annotated
            n_ne += bool(ne)
        assert 0 < n_ne < 0.15 * len(split["images"])


def test_annotations_geometry(quick):
    _, train, _ = quick
    areas = []
    for a in train["annotations"]:
        x, y, w, h = a["bbox"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 128 and y + h <= 128
        assert a["area"] == w * h
        assert a["segmentation"] == [[x, y, x + w, y, x + w, y + h, x, y + h]]
        areas.append(a["area"])
    small = sum(a < 32**2 for a in areas)
    large = sum(a > 96**2 for a in areas)
    assert small > 0.2 * len(areas) and large > 0
    assert len(areas) - small - large > 0.2 * len(areas)
    per_image = Counter(a["image_id"] for a in train["annotations"])
    assert max(per_image.values()) <= QUICK.max_objects_per_image


# ------------------------------------------------------------------------------------ files


def test_deterministic_bytes(small, tmp_path):
    again = generate_benchmark(tmp_path / "again", SMALL, progress=False)
    a, b = _files(small.root), _files(again.root)
    assert a.keys() == b.keys() and len(a) == 3 + 30 + 12
    assert a == b
    other = generate_benchmark(tmp_path / "other", SyntheticConfig(**{**SMALL.__dict__, "seed": 2}),
                               progress=False)
    c = _files(other.root)
    assert c["annotations/train.json"] != a["annotations/train.json"]
    assert c["images/train/000001.png"] != a["images/train/000001.png"]


def test_idempotent_and_refuses_other_config(small):
    before = {p: p.stat().st_mtime_ns for p in (small.train_json, small.root / "config.json")}
    again = generate_benchmark(small.root, SMALL, progress=False)
    assert again == small
    assert {p: p.stat().st_mtime_ns for p in before} == before
    with pytest.raises(SyntheticDatasetExistsError, match="different config"):
        generate_benchmark(small.root, SyntheticConfig(**{**SMALL.__dict__, "seed": 9}),
                           progress=False)
    # no temporary directories are left next to the root
    assert [p.name for p in small.root.parent.iterdir()] == [small.root.name]


def test_refuses_foreign_directory(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(SyntheticDatasetExistsError, match="choose another root"):
        generate_benchmark(tmp_path / "x", SMALL, progress=False)
    (tmp_path / "empty").mkdir()  # an empty directory is fine
    assert generate_benchmark(tmp_path / "empty", SMOKE, progress=False).train_json.is_file()


def test_smoke_config_works(tmp_path):
    bench = generate_benchmark(tmp_path / "smoke", SMOKE, progress=True)
    train = json.loads(bench.train_json.read_text())
    val = json.loads(bench.val_json.read_text())
    assert len(train["images"]) == 24 and len(val["images"]) == 12
    counts = category_image_counts(train)
    for c in train["categories"]:
        assert c["frequency"] == frequency_from_image_count(counts[c["id"]])
        assert counts[c["id"]] >= 1
    assert min(category_image_counts(val).values()) >= 3
    ds = LVISDetection(bench.train_json, bench.train_images, train=True, hflip_prob=0.5)
    assert ds.num_classes == 12
    for i in range(len(ds)):
        img, t = ds[i]
        assert img.shape == (3, 64, 64)
        assert t["boxes"].shape[1] == 4 and (t["labels"] >= 1).all()
