"""The shipped category statistics reproduce the published LVIS / Open Images facts, and the
counting helpers equal hand counts (docs/ARCHITECTURE.md, "The synthetic benchmark"; data/stats/SOURCES.md)."""

from __future__ import annotations

import numpy as np
import pytest

from acsl.data.stats import (
    category_image_counts,
    category_instance_counts,
    frequency_from_image_count,
    load_category_stats,
    load_openimages_stats,
    sorted_image_counts,
    sorted_instance_counts,
)


@pytest.mark.parametrize(
    "name, n_cats, r, c, f",
    [("lvis_v0.5", 1230, 454, 461, 315), ("lvis_v1", 1203, 337, 461, 405)],
)
def test_lvis_published_frequency_split(name, n_cats, r, c, f):
    df = load_category_stats(name)
    assert len(df) == n_cats
    assert df["id"].is_unique
    counts = df["frequency"].value_counts().to_dict()
    assert counts == {"r": r, "c": c, "f": f}


@pytest.mark.parametrize("name", ["lvis_v0.5", "lvis_v1"])
def test_lvis_frequency_follows_the_image_count_rule(name):
    df = load_category_stats(name)
    rule = df["image_count"].map(frequency_from_image_count)
    assert (rule == df["frequency"]).all()
    assert (df["image_count"] >= 1).all()
    assert (df["instance_count"] >= df["image_count"]).all()


def test_lvis_v05_known_totals():
    df = load_category_stats("lvis_v0.5")
    assert int(df["instance_count"].sum()) == 693_958  # SOURCES.md, matches HeroLT's table
    assert int(df["image_count"].max()) == 1145


def test_frequency_rule_boundaries():
    assert [frequency_from_image_count(n) for n in (0, 1, 10, 11, 100, 101)] == [
        "r", "r", "r", "c", "c", "f"
    ]


def test_openimages_published_facts():
    df = load_openimages_stats()
    assert list(df.columns) == ["id", "mid", "name", "instance_count"]
    assert len(df) == 500
    assert df["mid"].nunique() == 500
    assert int(df["instance_count"].sum()) == 12_195_144
    top = df.set_index("name")["instance_count"]
    assert int(top["Man"]) == 1_418_594
    assert int(df["instance_count"].min()) == 14  # Pressure cooker


def test_sorted_counts_are_descending():
    lvis = load_category_stats("lvis_v0.5")
    img = sorted_image_counts(lvis)
    assert img.dtype == np.int64 and len(img) == 1230
    assert img[0] == 1145 and img[-1] == 1 and (np.diff(img) <= 0).all()
    inst = sorted_instance_counts(load_openimages_stats())
    assert len(inst) == 500 and inst[0] == 1_418_594 and inst[-1] == 14
    assert (np.diff(inst) <= 0).all()
    with pytest.raises(ValueError, match="image_count"):
        sorted_image_counts(load_openimages_stats())


def test_counts_on_a_hand_written_lvis_file():
    # 3 images, 3 categories; hand counts:
    #   cat 1: anns on images 1, 1, 2      -> 2 images, 3 instances
    #   cat 2: ann on image 3              -> 1 image,  1 instance
    #   cat 5: no annotation               -> 0 images, 0 instances
    data = {
        "images": [{"id": i, "width": 10, "height": 10, "file_name": f"{i}.png"} for i in (1, 2, 3)],
        "categories": [
            {"id": 1, "name": "a", "frequency": "r"},
            {"id": 2, "name": "b", "frequency": "r"},
            {"id": 5, "name": "c", "frequency": "r"},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]},
            {"id": 11, "image_id": 1, "category_id": 1, "bbox": [3, 3, 2, 2]},
            {"id": 12, "image_id": 2, "category_id": 1, "bbox": [0, 0, 2, 2]},
            {"id": 13, "image_id": 3, "category_id": 2, "bbox": [0, 0, 2, 2]},
        ],
    }
    assert category_image_counts(data) == {1: 2, 2: 1, 5: 0}
    assert category_instance_counts(data) == {1: 3, 2: 1, 5: 0}
