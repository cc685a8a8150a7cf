"""Tests of the LVIS-format torch dataset (``acsl.data.lvis_dataset``) on hand-written files."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from acsl.data import (
    AnnotationError,
    ImageReadError,
    LVISDetection,
    collate_detection,
)


def _lvis_json() -> dict:
    return {
        "images": [
            {"id": 10, "file_name": "a.png", "width": 40, "height": 30,
             "neg_category_ids": [2], "not_exhaustive_category_ids": []},
            {"id": 11, "file_name": "b.png", "width": 20, "height": 20,
             "neg_category_ids": [], "not_exhaustive_category_ids": []},
            # LVIS v1 style: no file_name, only coco_url
            {"id": 12, "coco_url": "http://images.cocodataset.org/train2017/000000000012.jpg",
             "width": 16, "height": 8, "neg_category_ids": [], "not_exhaustive_category_ids": []},
        ],
        "categories": [
            {"id": 7, "name": "zebra", "frequency": "f"},
            {"id": 2, "name": "aardvark", "frequency": "r"},
            {"id": 5, "name": "mug", "frequency": "c"},
        ],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 7, "bbox": [1.0, 2.0, 10.0, 5.0], "area": 50.0},
            {"id": 2, "image_id": 10, "category_id": 5, "bbox": [20, 10, 4.5, 3], "area": 13.5},
            {"id": 3, "image_id": 12, "category_id": 2, "bbox": [0, 0, 16, 8], "area": 128.0},
        ],
    }


def _write(root: Path, data: dict) -> Path:
    rng = np.random.default_rng(0)
    imgs = root / "images"
    imgs.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(imgs / "a.png")
    Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(imgs / "b.png")
    Image.fromarray(np.full((8, 16, 3), 200, dtype=np.uint8)).save(imgs / "000000000012.jpg",
                                                                     format="JPEG")
    ann = root / "ann.json"
    ann.write_text(json.dumps(data))
    return ann


@pytest.fixture()
def files(tmp_path):
    return _write(tmp_path, _lvis_json()), tmp_path / "images"


def test_categories_and_labels(files):
    ds = LVISDetection(*files)
    assert ds.num_classes == 3
    assert [c["id"] for c in ds.categories] == [2, 5, 7]
    assert ds.label_to_category_id == [2, 5, 7]
    assert ds.category_id_to_label == {2: 1, 5: 2, 7: 3}
    assert ds.frequencies == ["r", "c", "f"]
    assert ds.image_ids == [10, 11, 12]
    assert len(ds) == 3


def test_item_tensors(files):
    ds = LVISDetection(*files)
    img, t = ds[0]
    ref = np.array(Image.open(files[1] / "a.png").convert("RGB"))
    assert img.dtype == torch.float32 and img.shape == (3, 30, 40)
    assert torch.allclose(img, torch.from_numpy(ref).permute(2, 0, 1).float() / 255)
    assert t["boxes"].dtype == torch.float32
    assert torch.equal(t["boxes"], torch.tensor([[1.0, 2.0, 11.0, 7.0], [20.0, 10.0, 24.5, 13.0]]))
    assert t["labels"].dtype == torch.int64 and t["labels"].tolist() == [3, 2]
    assert t["image_id"].dtype == torch.int64 and t["image_id"].shape == () and int(t["image_id"]) == 10


def test_image_without_annotations_is_kept(files):
    img, t = LVISDetection(*files)[1]
    assert img.shape == (3, 20, 20)
    assert t["boxes"].shape == (0, 4) and t["boxes"].dtype == torch.float32
    assert t["labels"].shape == (0,) and t["labels"].dtype == torch.int64


def test_coco_url_resolution(files):
    ds = LVISDetection(*files)
    assert ds.image_path(2) == files[1] / "000000000012.jpg"
    img, t = ds[2]
    assert img.shape == (3, 8, 16)
    assert t["labels"].tolist() == [1]


def test_collate(files):
    ds = LVISDetection(*files)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate_detection)
    images, targets = next(iter(loader))
    assert isinstance(images, list) and len(images) == 2 and images[1].shape == (3, 20, 20)
    assert [int(t["image_id"]) for t in targets] == [10, 11]


def test_hflip_is_correct_and_deterministic(files):
    plain = LVISDetection(*files)
    flipped = LVISDetection(*files, train=True, hflip_prob=1.0)
    img, t = plain[0]
    fimg, ft = flipped[0]
    assert torch.equal(fimg, img.flip(-1))
    assert torch.equal(ft["boxes"], torch.tensor([[29.0, 2.0, 39.0, 7.0], [15.5, 10.0, 20.0, 13.0]]))
    assert torch.equal(ft["labels"], t["labels"])
    # not in eval mode
    assert torch.equal(LVISDetection(*files, train=False, hflip_prob=1.0)[0][0], img)

    half = LVISDetection(*files, train=True, hflip_prob=0.5, seed=3)
    decisions = []
    for epoch in range(16):
        half.set_epoch(epoch)
        first = torch.equal(half[0][0], fimg)
        assert torch.equal(half[0][0], fimg) == first  # same (seed, epoch, index) -> same flip
        decisions.append(first)
    assert 0 < sum(decisions) < 16
    other = LVISDetection(*files, train=True, hflip_prob=0.5, seed=3)
    again = []
    for epoch in range(16):
        other.set_epoch(epoch)
        again.append(torch.equal(other[0][0], fimg))
    assert again == decisions


def test_missing_frequency_names_file_and_field(tmp_path):
    data = _lvis_json()
    del data["categories"][1]["frequency"]
    ann = _write(tmp_path, data)
    with pytest.raises(AnnotationError) as e:
        LVISDetection(ann, tmp_path / "images")
    assert str(ann) in str(e.value) and "categories[1].frequency" in str(e.value)
    assert "'r', 'c', 'f'" in str(e.value)


@pytest.mark.parametrize(
    "mutate,field",
    [
        (lambda d: d["categories"][0].update(frequency="x"), "categories[0].frequency"),
        (lambda d: d["categories"].clear(), "categories"),
        (lambda d: d["images"][1].pop("width"), "images[1].width"),
        (lambda d: d["images"][0].pop("file_name"), "images[0].file_name"),
        (lambda d: d["annotations"][1].update(bbox=[0, 0, 0, 3]), "annotations[1].bbox"),
        (lambda d: d["annotations"][0].update(bbox=[0, 0, 3]), "annotations[0].bbox"),
        (lambda d: d["annotations"][2].update(category_id=99), "annotations[2].category_id"),
        (lambda d: d["annotations"][2].update(image_id=1234), "annotations[2].image_id"),
        (lambda d: d.pop("annotations"), "annotations"),
    ],
)
def test_annotation_errors(tmp_path, mutate, field):
    data = copy.deepcopy(_lvis_json())
    mutate(data)
    ann = _write(tmp_path, data)
    with pytest.raises(AnnotationError) as e:
        LVISDetection(ann, tmp_path / "images")
    msg = str(e.value)
    assert str(ann) in msg and f"'{field}'" in msg
    if field.endswith("category_id"):
        assert "99" in msg and "unknown category" in msg
    if field.endswith("image_id"):
        assert "1234" in msg and "unknown image" in msg


def test_unparseable_json(tmp_path):
    ann = tmp_path / "broken.json"
    ann.write_text('{"images": [')
    with pytest.raises(AnnotationError, match="broken.json"):
        LVISDetection(ann, tmp_path)


def test_corrupt_and_missing_images(files):
    ann, images = files
    (images / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    ds = LVISDetection(ann, images)
    with pytest.raises(ImageReadError) as e:
        ds[1]
    assert str(images / "b.png") in str(e.value)
    assert isinstance(e.value, OSError)
    (images / "a.png").unlink()
    with pytest.raises(ImageReadError, match="a.png"):
        ds[0]


def test_image_size_mismatch(files):
    ann, images = files
    Image.fromarray(np.zeros((5, 5, 3), dtype=np.uint8)).save(images / "b.png")
    with pytest.raises(ImageReadError, match="5x5"):
        LVISDetection(ann, images)[1]


def test_v1_images_resolve_inside_coco_split_folders(tmp_path):
    """LVIS v1 mixes COCO train2017 and val2017 images: with the COCO folder as image root, coco_url's
    last two parts ("val2017/x.jpg") pick the split folder."""
    from PIL import Image

    (tmp_path / "coco" / "val2017").mkdir(parents=True)
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "coco" / "val2017" / "000000000005.jpg")
    data = {
        "images": [{"id": 5, "width": 40, "height": 30,
                    "coco_url": "http://images.cocodataset.org/val2017/000000000005.jpg"}],
        "annotations": [{"id": 1, "image_id": 5, "category_id": 1, "bbox": [2, 3, 10, 12], "area": 120.0,
                         "segmentation": [[2, 3, 12, 3, 12, 15, 2, 15]]}],
        "categories": [{"id": 1, "name": "thing", "frequency": "r", "synset": "thing.n.01"}],
    }
    ann = tmp_path / "lvis_v1_val.json"
    ann.write_text(json.dumps(data))
    ds = LVISDetection(ann, tmp_path / "coco")
    assert ds.image_path(0) == tmp_path / "coco" / "val2017" / "000000000005.jpg"
    image, target = ds[0]
    assert image.shape == (3, 30, 40) and target["boxes"].tolist() == [[2.0, 3.0, 12.0, 15.0]]


def test_empty_category_list_is_named(tmp_path):
    ann = tmp_path / "empty.json"
    ann.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    with pytest.raises(AnnotationError, match=r"empty.json.*categories.*non-empty list"):
        LVISDetection(ann, tmp_path)


def test_the_index_equals_the_official_lvis_apis(smoke_bench):
    """``LVISIndex`` holds what ``lvis.LVIS`` holds for the fields the loaders use."""
    from lvis import LVIS

    from acsl.data.lvis_dataset import LVISDetection

    official = LVIS(str(smoke_bench.train_json))
    ours = LVISDetection(smoke_bench.train_json, smoke_bench.train_images).lvis
    assert ours.imgs == official.imgs and ours.cats == official.cats and ours.anns == official.anns
    assert {k: v for k, v in ours.img_ann_map.items()} == {k: v for k, v in official.img_ann_map.items() if v}


def test_kept_decoded_images_equal_fresh_reads_and_skip_the_files(tmp_path, smoke_bench):
    import shutil

    images = tmp_path / "images"
    shutil.copytree(smoke_bench.train_images, images)
    kept = LVISDetection(smoke_bench.train_json, images, train=True, hflip_prob=0.5, seed=0, keep_decoded=True)
    fresh = LVISDetection(smoke_bench.train_json, smoke_bench.train_images, train=True, hflip_prob=0.5, seed=0)
    first = [kept[i][0].clone() for i in range(3)]
    shutil.rmtree(images)  # a kept image is not read again
    for i in range(3):
        assert torch.equal(kept[i][0], first[i]) and torch.equal(kept[i][0], fresh[i][0])
        kept[i][0].mul_(0)  # a caller's in-place change does not reach the kept copy
        assert torch.equal(kept[i][0], first[i])
