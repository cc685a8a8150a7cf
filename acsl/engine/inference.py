"""Run a trained detector over a dataset and emit LVIS-format results
(``image_id``, ``category_id``, ``bbox`` as [x, y, w, h], ``score``)."""

from __future__ import annotations

import torch
from tqdm import tqdm

from ..data import LVISDetection, collate_detection
from ..models import LongTailFasterRCNN
from .trainer import resolve_device


@torch.no_grad()
def predict(
    model: LongTailFasterRCNN,
    dataset: LVISDetection,
    batch_size: int = 8,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> list[dict]:
    """Detections of ``model`` on every image of ``dataset``, with contiguous labels mapped back to the
    annotation file's category ids."""
    device = resolve_device(device)
    model.to(device).eval()
    label_to_category = dataset.label_to_category_id
    results: list[dict] = []
    starts = range(0, len(dataset), batch_size)
    for start in tqdm(starts, desc="inference", disable=not progress, mininterval=2.0, leave=False):
        images, targets = collate_detection([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        outputs = model([image.to(device) for image in images])
        for output, target in zip(outputs, targets):
            boxes = output["boxes"].float().cpu()
            xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).tolist()
            image_id = int(target["image_id"])
            for box, score, label in zip(xywh, output["scores"].float().cpu().tolist(), output["labels"].cpu().tolist()):
                results.append(
                    {"image_id": image_id, "category_id": label_to_category[label - 1], "bbox": box, "score": score}
                )
    return results
