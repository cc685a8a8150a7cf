"""Shared fixtures: the `smoke` profile's synthetic benchmark, generated once per test session; and a tiny
layout of the real Open Images challenge files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from acsl.data import LVISDetection, generate_benchmark
from acsl.profiles import get_profile


@pytest.fixture(scope="session")
def smoke_bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "synthetic-smoke-seed0"
    return generate_benchmark(root, replace(get_profile("smoke").data, seed=0), progress=False)


@pytest.fixture(scope="session")
def smoke_train(smoke_bench):
    return LVISDetection(smoke_bench.train_json, smoke_bench.train_images, train=True, hflip_prob=0.5, seed=0)


@pytest.fixture(scope="session")
def smoke_val(smoke_bench):
    return LVISDetection(smoke_bench.val_json, smoke_bench.val_images)


def train_steps(model, images, targets, steps: int, lr: float = 0.02) -> list[float]:
    """SGD steps on one fixed batch; the total loss of each step, each checked finite. The expected loss
    names are torchvision's four (RPN objectness and box, RoI classifier and box)."""
    import torch

    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    history = []
    for _ in range(steps):
        losses = model(images, targets)
        assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
        loss = sum(losses.values())
        assert torch.isfinite(loss), losses
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    return history


# ------------------------------------------------------------------------------- Open Images

CLASSES = "/m/animal,Animal\n/m/cat,Cat\n/m/car,Car\n"
HIERARCHY = {"LabelName": "/m/0bl9f", "Subcategory": [
    {"LabelName": "/m/animal", "Subcategory": [{"LabelName": "/m/cat"}]}, {"LabelName": "/m/car"}]}
BOX_HEADER = "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside\n"
LABEL_HEADER = "ImageID,Source,LabelName,Confidence\n"


def openimages_layout(root: Path, images: int = 6) -> Path:
    """The challenge-2019 files (official headers) and generated JPEGs, as `acsl data download openimages`
    and the user's image fetch lay them out."""
    folder = root / "openimages" / "annotations"
    folder.mkdir(parents=True)
    (folder / "challenge-2019-classes-description-500.csv").write_text(CLASSES)
    (folder / "challenge-2019-label500-hierarchy.json").write_text(json.dumps(HIERARCHY))
    for split in ("train", "validation"):
        (root / "openimages" / "images" / split).mkdir(parents=True)
        boxes, labels = [BOX_HEADER], [LABEL_HEADER]
        for k in range(images):
            image_id = f"{split[:2]}{k:04d}"
            Image.new("RGB", (80, 60), (30 * k % 255, 90, 160)).save(root / "openimages" / "images" / split / f"{image_id}.jpg")
            label = "/m/cat" if k % 2 else "/m/car"
            boxes.append(f"{image_id},xclick,{label},1,0.1,0.6,0.2,0.7,0,0,{int(k == 3)},0,0\n")
            labels.append(f"{image_id},verification,{label},1\n")
            labels.append(f"{image_id},verification,{'/m/car' if k % 2 else '/m/animal'},0\n")
        (folder / f"challenge-2019-{split}-detection-bbox.csv").write_text("".join(boxes))
        (folder / f"challenge-2019-{split}-detection-human-imagelabels.csv").write_text("".join(labels))
    return root
