"""Run a trained detector over a dataset and emit LVIS-format results
(``image_id``, ``category_id``, ``bbox`` as [x, y, w, h], ``score``).

Under torchrun each process runs every K-th image and the results are gathered, in dataset order, on
every rank, so K processes return what one would.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from ..data import LVISDetection, collate_detection
from ..models import LongTailFasterRCNN
from . import distributed
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
    indices = list(range(distributed.rank(), len(dataset), distributed.world_size()))
    per_image: dict[int, list[dict]] = {}
    starts = range(0, len(indices), batch_size)
    bar = tqdm(starts, desc="inference", disable=not (progress and distributed.is_main_process()),
               mininterval=2.0, leave=False)
    for start in bar:
        chunk = indices[start:start + batch_size]
        images, targets = collate_detection([dataset[i] for i in chunk])
        outputs = model([image.to(device) for image in images])
        for index, output, target in zip(chunk, outputs, targets):
            per_image[index] = image_detections(output, int(target["image_id"]), label_to_category)
    gathered: dict[int, list[dict]] = {}
    for shard in distributed.all_gather(per_image):
        gathered.update(shard)
    return [detection for index in sorted(gathered) for detection in gathered[index]]


def image_detections(output: dict[str, torch.Tensor], image_id: int, label_to_category) -> list[dict]:
    """One image's detector output (``boxes`` as [x1, y1, x2, y2], ``scores``, ``labels`` from 1) as LVIS
    results, labels mapped back to the annotation file's category ids (``label_to_category[label - 1]``)."""
    boxes = output["boxes"].float().cpu()
    xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).tolist()
    scores, labels = output["scores"].float().cpu().tolist(), output["labels"].cpu().tolist()
    return [{"image_id": image_id, "category_id": label_to_category[label - 1], "bbox": box, "score": score}
            for box, score, label in zip(xywh, scores, labels)]
