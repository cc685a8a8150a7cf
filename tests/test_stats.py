"""The shipped category statistics reproduce the published LVIS / Open Images facts, and the
counting helpers equal hand counts (docs/ARCHITECTURE.md, "The synthetic benchmark"; data/stats/SOURCES.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from acsl.data.stats import (
    LVIS_TRAIN_IMAGES,
    category_image_counts,
    category_instance_counts,
    frequency_from_image_count,
    load_category_stats,
    load_openimages_stats,
    lvis_split_statistics,
    sorted_image_counts,
    sorted_instance_counts,
    split_statistics,
    statistics_table,
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


def _split() -> dict:
    # 4 images (image 4 has no annotation), 4 categories; hand counts:
    #   apple (1, f): images 1, 1, 1, 2 -> 4 annotations, 2 images
    #   bat   (2, c): images 1, 3       -> 2 annotations, 2 images
    #   cat   (3, r): image 2           -> 1 annotation,  1 image
    #   dog   (4, r): image 3           -> 1 annotation,  1 image
    # 8 annotations / 4 images = 2.0 per image; distinct categories per image 2, 2, 2, 0 -> 6 / 4 = 1.5;
    # shares r 2/8 = 25 %, c 2/8 = 25 %, f 4/8 = 50 %; smallest: cat and dog tie at 1, the lower id (cat) named.
    placed = [(1, 1), (1, 1), (1, 1), (2, 1), (1, 2), (3, 2), (2, 3), (3, 4)]  # (image, category)
    return {
        "images": [{"id": i, "width": 10, "height": 10, "file_name": f"{i}.png"} for i in (1, 2, 3, 4)],
        "categories": [{"id": 1, "name": "apple", "frequency": "f"}, {"id": 2, "name": "bat", "frequency": "c"},
                       {"id": 3, "name": "cat", "frequency": "r"}, {"id": 4, "name": "dog", "frequency": "r"}],
        "annotations": [{"id": 10 + k, "image_id": image, "category_id": category, "bbox": [0, 0, 2, 2]}
                        for k, (image, category) in enumerate(placed)],
    }


def test_split_statistics_on_a_hand_written_lvis_file(tmp_path):
    stats = split_statistics(_split())
    expected = {
        "images": 4, "annotations": 8, "categories": 4,
        "rare categories": 2, "common categories": 1, "frequent categories": 1,
        "rare annotations (%)": 25.0, "common annotations (%)": 25.0, "frequent annotations (%)": 50.0,
        "annotations per image": 2.0, "categories per image": 1.5,
        "largest category": "apple", "largest category annotations": 4,
        "smallest category": "cat", "smallest category annotations": 1, "categories at the smallest count": 2,
    }
    assert stats.to_dict() == expected and list(stats.index) == list(expected)
    path = tmp_path / "train.json"
    path.write_text(json.dumps(_split()))
    assert split_statistics(path).equals(stats)  # a file reads as its loaded dict


def test_split_statistics_refuses_annotations_of_undeclared_categories():
    data = _split()
    data["annotations"].append({"id": 99, "image_id": 1, "category_id": 7, "bbox": [0, 0, 2, 2]})
    with pytest.raises(ValueError, match="7"):
        split_statistics(data)
    with pytest.raises(ValueError, match="at least one category"):
        split_statistics({"images": [], "categories": [], "annotations": []})


@pytest.mark.parametrize(
    "name, images, annotations, rare, common, frequent, per_image",
    [("lvis_v0.5", 57_263, 693_958, 0.85, 8.4, 90.8, 12.12), ("lvis_v1", 100_170, 1_270_141, 0.41, 5.1, 94.5, 12.68)],
)
def test_lvis_split_statistics_from_the_shipped_csv(name, images, annotations, rare, common, frequent, per_image):
    stats = lvis_split_statistics(name)
    assert stats["images"] == images == LVIS_TRAIN_IMAGES[name]
    assert stats["annotations"] == annotations == int(load_category_stats(name)["instance_count"].sum())
    assert stats["rare annotations (%)"] == pytest.approx(rare, abs=0.05)
    assert stats["common annotations (%)"] == pytest.approx(common, abs=0.05)
    assert stats["frequent annotations (%)"] == pytest.approx(frequent, abs=0.05)
    assert stats["annotations per image"] == pytest.approx(per_image, abs=0.005)
    assert (stats["largest category"], stats["smallest category"], stats["smallest category annotations"]) == (
        "banana", "bait", 1)


def test_statistics_table_puts_splits_side_by_side():
    table = statistics_table({"ours": split_statistics(_split()), "LVIS v0.5": lvis_split_statistics("lvis_v0.5")})
    assert list(table.columns) == ["ours", "LVIS v0.5"] and table.index.name == "statistic"
    assert table.loc["rare annotations (%)", "LVIS v0.5"] == 0.85  # rounded to 2 digits
    assert table.loc["largest category annotations", "LVIS v0.5"] == 26_148
