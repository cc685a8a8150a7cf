"""The Open Images reader on small files shaped like the official ones, and its errors (file, line, column)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from acsl.data.openimages import OpenImagesFormatError, read_boxes, read_class_descriptions, read_openimages

CLASSES = "/m/animal,Animal\n/m/cat,Cat\n/m/car,Car\n"  # no header, as the challenge's file
HIERARCHY = {"LabelName": "/m/0bl9f", "Subcategory": [
    {"LabelName": "/m/animal", "Subcategory": [{"LabelName": "/m/cat"}]}, {"LabelName": "/m/car"}]}
BOXES = ("ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside\n"
         "img1,xclick,/m/cat,1,0.1,0.5,0.2,0.6,1,0,0,0,0\n"
         "img1,xclick,/m/car,1,0.0,1.0,0.5,1.0,0,1,1,0,0\n"
         "img2,activemil,/m/car,1,0.25,0.75,0.25,0.75,0,0,0,0,0\n"
         "img3,xclick,/m/cat,1,0.1,0.2,0.1,0.2,0,0,0,0,0\n")
LABELS = "ImageID,Source,LabelName,Confidence\nimg1,verification,/m/cat,1\nimg2,verification,/m/animal,0\nimg2,x,/m/other,1\n"


@pytest.fixture
def files(tmp_path):
    (tmp_path / "classes.csv").write_text(CLASSES)
    (tmp_path / "hierarchy.json").write_text(json.dumps(HIERARCHY))
    (tmp_path / "boxes.csv").write_text(BOXES)
    (tmp_path / "labels.csv").write_text(LABELS)
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (200, 100)).save(images / "img1.jpg")
    Image.new("RGB", (40, 80)).save(images / "img2.jpg")  # img3.jpg is missing
    return tmp_path


def test_reader_builds_the_internal_form(files):
    data = read_openimages(files / "boxes.csv", files / "classes.csv", files / "hierarchy.json", files / "images",
                           files / "labels.csv")
    assert [c["label_name"] for c in data["categories"]] == ["/m/animal", "/m/cat", "/m/car"]
    assert [(c["image_count"], c["instance_count"]) for c in data["categories"]] == [(0, 0), (1, 1), (2, 2)]
    img1, img2 = data["images"]
    assert (img1["width"], img1["height"], img1["openimages_id"]) == (200, 100, "img1")
    assert img1["pos_category_ids"] == [2] and img2["neg_category_ids"] == [1]  # /m/other is not a challenge class
    cat, car, car2 = data["annotations"]
    assert cat["bbox"] == pytest.approx([20.0, 20.0, 80.0, 40.0]) and cat["is_occluded"] and not cat["is_group_of"]
    assert car["is_group_of"] and car["is_truncated"] and car2["bbox"] == pytest.approx([10.0, 20.0, 20.0, 40.0])
    assert data["hierarchy"] == {"1": [], "2": [1], "3": []}
    assert data["info"]["missing_images"] == ["img3"] and data["info"]["degenerate_box_lines"] == []


@pytest.mark.parametrize("row,column,expected", [
    ("img1,x,/m/cat,1,abc,0.5,0.2,0.6,0,0,0,0,0", "XMin", "a number in"),
    ("img1,x,/m/cat,1,0.1,1.5,0.2,0.6,0,0,0,0,0", "XMax", "normalised coordinate"),
    ("img1,x,/m/cat,1,0.6,0.5,0.2,0.6,0,0,0,0,0", "XMax", "a value above XMin"),
    ("img1,x,/m/dog,1,0.1,0.5,0.2,0.6,0,0,0,0,0", "LabelName", "class-description file"),
    ("img1,x,/m/cat,1,0.1,0.5,0.2,0.6,0,0,yes,0,0", "IsGroupOf", "0 or 1"),
])
def test_a_malformed_box_row_names_file_line_and_column(files, row, column, expected):
    path = files / "bad.csv"
    path.write_text(BOXES + row + "\n")
    with pytest.raises(OpenImagesFormatError, match=rf"bad.csv, line 6, column {column}: expected .*{expected}"):
        read_boxes(path, read_class_descriptions(files / "classes.csv"))


def test_missing_columns_and_bad_class_files_are_named(files):
    (files / "short.csv").write_text("ImageID,LabelName,XMin\nimg1,/m/cat,0.1\n")
    with pytest.raises(OpenImagesFormatError, match=r"short.csv, line 1: the header lacks the column\(s\) \['XMax'"):
        read_boxes(files / "short.csv", {"/m/cat": "Cat"})
    (files / "dup.csv").write_text("/m/cat,Cat\n/m/cat,Kitten\n")
    with pytest.raises(OpenImagesFormatError, match="dup.csv, line 2, column LabelName: expected each label name once"):
        read_class_descriptions(files / "dup.csv")
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_class_descriptions(files / "nope.csv")


def test_a_zero_area_box_is_left_out_and_its_line_reported(files):
    (files / "flat.csv").write_text(BOXES + "img1,x,/m/cat,1,0.3,0.3,0.2,0.6,0,0,0,0,0\n")
    skipped = []
    boxes = read_boxes(files / "flat.csv", read_class_descriptions(files / "classes.csv"), skipped=skipped)
    assert len(boxes) == 4 and skipped == [6]
