"""``acsl.data.check``: every problem of a deliberately broken LVIS file is named with its file and
field, good v0.5- and v1-shaped files pass (``acsl data check``)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from acsl.data.check import DECODE_SAMPLE, Problem, check_lvis, format_report, resolve_image_path

V05_NAME = "COCO_val2014_000000000001.jpg"  # stored on disk as the COCO-2017 name below
V05_DISK = "000000000001.jpg"
V1_URL = "http://images.cocodataset.org/train2017/000000000002.jpg"
V1_DISK = "000000000002.jpg"


def _image(path: Path, size=(8, 6)) -> None:
    fmt = "PNG" if path.suffix == ".png" else "JPEG"
    Image.new("RGB", size, (200, 40, 40)).save(path, format=fmt)


def _categories() -> list[dict[str, Any]]:
    return [
        {"id": 1, "name": "cat", "frequency": "r", "image_count": 1},
        {"id": 2, "name": "dog", "frequency": "c", "image_count": 50},
        {"id": 3, "name": "car", "frequency": "f", "image_count": 101},
    ]


def _v05() -> dict[str, Any]:
    return {
        "images": [
            {"id": 1, "width": 8, "height": 6, "file_name": V05_NAME,
             "neg_category_ids": [3], "not_exhaustive_category_ids": [2]},
            {"id": 3, "width": 8, "height": 6, "file_name": "extra.png", "neg_category_ids": []},
        ],
        "categories": _categories(),
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 3, 2], "area": 6.0},
            {"id": 2, "image_id": 3, "category_id": 2, "bbox": [0.5, 0, 2, 2.5], "area": 5.0},
        ],
    }


def _v1() -> dict[str, Any]:
    return {
        "images": [{"id": 2, "width": 8, "height": 6, "coco_url": V1_URL,
                    "neg_category_ids": [1], "not_exhaustive_category_ids": []}],
        "categories": _categories(),
        "annotations": [{"id": 7, "image_id": 2, "category_id": 3, "bbox": [0, 0, 4, 4], "area": 16.0}],
    }


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    _image(images / V05_DISK)
    _image(images / "extra.png")
    _image(images / V1_DISK)
    return images


def _write(tmp_path: Path, data: Any, name: str = "ann.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def _fields(problems: list[Problem]) -> list[str]:
    return [p.field for p in problems]


# ---------------------------------------------------------------------------------------- good


def test_good_v05_file_resolves_coco2014_names_by_id(tmp_path, root):
    ann = _write(tmp_path, _v05())
    assert check_lvis(ann, root) == []
    assert check_lvis(ann, root, check_images="all") == []
    assert format_report([]) == "OK: no problems found"
    assert resolve_image_path(_v05()["images"][0], root) == root / V05_DISK


def test_good_v1_file_resolves_coco_url(tmp_path, root):
    ann = _write(tmp_path, _v1())
    assert check_lvis(ann, root) == []
    assert resolve_image_path(_v1()["images"][0], root, "v1") == root / V1_DISK


def test_given_version_checks_category_count(tmp_path, root):
    ann = _write(tmp_path, _v1())
    problems = check_lvis(ann, root, version="v1")
    assert [(p.field, p.message) for p in problems] == [
        ("categories", "LVIS v1 has 1203 categories, found 3")
    ]


# ---------------------------------------------------------------------------------------- broken


def _only(problems: list[Problem], ann: Path, field: str, *words: str, file: Path | None = None):
    assert len(problems) == 1, format_report(problems)
    p = problems[0]
    assert (p.file, p.field) == (str(file or ann), field)
    for w in words:
        assert w in p.message
    assert format_report(problems) == f"{p.file}: {p.field}: {p.message}"


def test_missing_frequency(tmp_path, root):
    data = _v05()
    del data["categories"][1]["frequency"]
    ann = _write(tmp_path, data)
    _only(check_lvis(ann, root), ann, "categories[1].frequency", "missing")


def test_invalid_frequency_value(tmp_path, root):
    data = _v05()
    data["categories"][0]["frequency"] = "rare"
    ann = _write(tmp_path, data)
    _only(check_lvis(ann, root), ann, "categories[0].frequency", "'rare'")


def test_frequency_inconsistent_with_image_count(tmp_path, root):
    data = _v05()
    data["categories"][2]["image_count"] = 100  # 'f' needs more than 100 images
    ann = _write(tmp_path, data)
    _only(check_lvis(ann, root), ann, "categories[2].frequency", "image_count 100", "'c'")
    assert check_lvis(ann, root, frequency_rule=False) == []


def test_annotation_of_an_absent_image(tmp_path, root):
    data = _v05()
    data["annotations"][1]["image_id"] = 99
    ann = _write(tmp_path, data)
    _only(check_lvis(ann, root), ann, "annotations[1].image_id", "unknown image id 99")


def test_unknown_neg_category_id(tmp_path, root):
    data = _v1()
    data["images"][0]["neg_category_ids"] = [1, 42]
    ann = _write(tmp_path, data)
    _only(check_lvis(ann, root), ann, "images[0].neg_category_ids", "42")


def test_v1_file_missing_coco_url(tmp_path, root):
    data = _v1()
    del data["images"][0]["coco_url"]
    ann = _write(tmp_path, data)
    problems = check_lvis(ann, root, version="v1")
    assert ("images[0].coco_url" in _fields(problems)) and all(p.file == str(ann) for p in problems)
    # auto-detected: neither path field is present
    _only(check_lvis(ann, root), ann, "images[0].coco_url", "neither file_name")


def test_missing_image_file(tmp_path, root):
    (root / V1_DISK).unlink()
    ann = _write(tmp_path, _v1())
    _only(check_lvis(ann, root), ann, "images[0].coco_url", "not found", V1_DISK)
    assert check_lvis(ann, root, check_images=False) == []


def test_corrupt_image(tmp_path, root):
    (root / V05_DISK).write_bytes((root / V05_DISK).read_bytes()[:40])  # truncated JPEG
    ann = _write(tmp_path, _v05())
    _only(check_lvis(ann, root), ann, "images[0].file_name", "cannot decode", file=root / V05_DISK)


def test_image_size_differs_from_annotation(tmp_path, root):
    _image(root / "extra.png", size=(5, 5))
    ann = _write(tmp_path, _v05())
    _only(check_lvis(ann, root), ann, "images[1].file_name", "5x5", "8x6", file=root / "extra.png")


def test_only_a_sample_is_decoded_unless_all(tmp_path, root):
    data = _v05()
    first = data["images"][1]
    data["images"] += [
        dict(first, id=100 + i, file_name=f"s{i}.png") for i in range(DECODE_SAMPLE)
    ]
    for i in range(DECODE_SAMPLE):
        _image(root / f"s{i}.png")
    (root / "s0.png").write_bytes(b"not an image")  # image number 3, inside the sample
    (root / f"s{DECODE_SAMPLE - 1}.png").write_bytes(b"not an image")  # number 22, outside
    ann = _write(tmp_path, data)
    assert _fields(check_lvis(ann, root)) == ["images[2].file_name"]
    problems = check_lvis(ann, root, check_images="all")
    assert _fields(problems) == ["images[2].file_name", f"images[{DECODE_SAMPLE + 1}].file_name"]


def test_not_json_and_missing_keys(tmp_path, root):
    bad = _write(tmp_path, "{not json", "bad.json")
    _only(check_lvis(bad, root), bad, "<file>", "not parseable JSON")
    ann = _write(tmp_path, {"images": []}, "keys.json")
    problems = check_lvis(ann, root)
    assert _fields(problems) == ["annotations", "categories"]
    missing = tmp_path / "nope.json"
    _only(check_lvis(missing, root), missing, "<file>", "not found")


def test_many_problems_collected_and_capped(tmp_path, root):
    data = _v05()
    data["images"][0].pop("width")
    data["annotations"].append(copy.deepcopy(data["annotations"][0]))  # duplicate id 1
    data["annotations"].append({"id": 5, "image_id": 1, "category_id": 9, "bbox": [0, 0, 0, 1], "area": 0.0})
    data["images"][1]["neg_category_ids"] = [2]  # but category 2 is annotated on image 3
    ann = _write(tmp_path, data)
    problems = check_lvis(ann, root)
    assert _fields(problems) == [
        "images[0].width",
        "annotations[2].id",
        "annotations[3].category_id",
        "annotations[3].bbox",
        "images[1].neg_category_ids",
    ], format_report(problems)
    capped = check_lvis(ann, root, max_problems=3)
    assert len(capped) == 3
    assert capped[-1].message == "… and 3 more problems"
    assert len(format_report(capped).splitlines()) == 3
