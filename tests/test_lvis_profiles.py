"""The paper's profiles on real LVIS: data found in the download layout (or a clear message naming what
is missing), and the detector initialised from a trained Faster R-CNN."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from acsl.data.download import DataMissingError
from acsl.runs import RunStore, baseline_spec, decoupled_spec
from acsl.losses import build_loss
from acsl.models import DetectorConfig, build_detector
from acsl.profiles import get_profile


def _write_lvis_layout(root, version):
    """A tiny LVIS-shaped data root: annotations as the download creates them, COCO 2017 image folders."""
    for split in ("train2017", "val2017"):
        (root / "coco" / split).mkdir(parents=True)
    folder = root / f"lvis_{version}" / "annotations"
    folder.mkdir(parents=True)
    categories = [{"id": 1, "name": "ski_pole", "frequency": "f", "synset": "ski_pole.n.01"},
                  {"id": 2, "name": "acorn", "frequency": "r", "synset": "acorn.n.01"}]
    for split, image_id in (("train", 7), ("val", 9)):
        name = f"{image_id:012d}.jpg"
        Image.new("RGB", (64, 48), (20, 120, 200)).save(root / "coco" / f"{split}2017" / name)
        image = {"id": image_id, "width": 64, "height": 48, "neg_category_ids": [], "not_exhaustive_category_ids": []}
        if version == "v0.5":
            image["file_name"] = f"COCO_{split}2014_{name}"
        else:
            image["coco_url"] = f"http://images.cocodataset.org/{split}2017/{name}"
        annotation = {"id": image_id, "image_id": image_id, "category_id": 1, "bbox": [4, 5, 20, 10], "area": 200.0,
                      "segmentation": [[4, 5, 24, 5, 24, 15, 4, 15]]}
        (folder / f"lvis_{version}_{split}.json").write_text(
            json.dumps({"images": [image], "annotations": [annotation], "categories": categories}))


@pytest.mark.parametrize("version", ["v0.5", "v1"])
def test_lvis_profiles_read_the_download_layout(tmp_path, version):
    _write_lvis_layout(tmp_path, version)
    store = RunStore(tmp_path / "runs", data_root=tmp_path, progress=False)
    train_set, val_set, val_json = store.datasets(decoupled_spec(f"lvis-{version}", "acsl", xi=0.7))
    assert train_set.num_classes == 2 and train_set.frequencies == ["f", "r"]
    image, target = train_set[0]
    assert image.shape == (3, 48, 64) and target["labels"].tolist() == [1]
    assert val_set.image_path(0).parent.name == "val2017" and val_json.name == f"lvis_{version}_val.json"


def test_missing_real_data_names_the_files_and_the_command(tmp_path):
    store = RunStore(tmp_path / "runs", data_root=tmp_path / "data", progress=False)
    with pytest.raises(DataMissingError, match=r"lvis_v0.5_train.json[\s\S]*acsl data download lvis-v0.5"):
        store.datasets(baseline_spec("lvis-v0.5"))


def test_paper_profile_follows_the_recipe():
    profile = get_profile("lvis-v0.5")
    assert (profile.detector.min_size, profile.detector.max_size) == (800, 1333)
    assert profile.detector.rois_per_image == 512 and profile.detector.rpn_post_nms_top_n_train == 2000
    assert profile.detector.backbone == "resnet50" and profile.detector.init == "torchvision-coco"
    assert (profile.stage1.lr, profile.stage2.lr, profile.stage1.batch_size) == (0.01, 0.02, 16)
    assert profile.stage1.lr_steps == (8, 11) and profile.stage1.epochs == 12


def test_detector_starts_from_a_trained_faster_rcnn_except_its_predictor(tmp_path):
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    torch.manual_seed(1)
    trained = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    weights = tmp_path / "coco_detector.pth"
    torch.save(trained.state_dict(), weights)
    config = DetectorConfig(backbone="resnet50", init=str(weights))
    model = build_detector(config, 5, build_loss("acsl", 5, ["r", "c", "f", "f", "c"]))
    ours, theirs = model.state_dict(), trained.state_dict()
    for key in ("backbone.body.layer4.2.conv3.weight", "rpn.head.conv.0.0.weight", "roi_heads.box_head.fc7.weight"):
        assert torch.equal(ours[key], theirs[key]), key
    assert ours["roi_heads.box_predictor.cls_score.weight"].shape == (6, 1024)  # fresh C + 1 outputs


def test_init_weights_that_do_not_fit_are_refused(tmp_path):
    bad = tmp_path / "small.pth"
    torch.save({"backbone.body.conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises(RuntimeError, match="do not fit this detector"):
        build_detector(DetectorConfig(backbone="resnet50", init=str(bad)), 3, build_loss("bce", 3))
    with pytest.raises(FileNotFoundError, match="init weights not found"):
        build_detector(DetectorConfig(backbone="resnet50", init=str(tmp_path / "none.pth")), 3, build_loss("bce", 3))
