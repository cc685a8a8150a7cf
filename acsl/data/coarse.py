"""A detection dataset relabelled with a coarser vocabulary: the synthetic benchmark's analogue of COCO
(docs/ARCHITECTURE.md, "The pretrained start").

The paper's detectors start from a COCO-trained Faster R-CNN. COCO labels the very images LVIS annotates,
with fewer, coarser and far less long-tailed classes: its 80 classes are common objects that LVIS keeps
among its frequent categories, and the rarer LVIS categories fall under a coarser COCO class (a dalmatian
is a "dog") or under none. ``CoarseLabels`` builds the same relation on the synthetic benchmark (categories
are shape × colour × marking): a frequent category keeps its own class, and every common or rare category
is labelled by its shape alone ("other star"). Every coarse class has many images (a shape class pools all
the rarer categories of that shape), and the pretraining stage trains a detector on it.
"""

from __future__ import annotations

from typing import Any

import torch

from .subset import images_per_class

#: The category attribute that names the coarse class of a common or rare category.
PRETRAIN_ATTRIBUTE = "shape"


def coarse_class(category: dict, attribute: str = PRETRAIN_ATTRIBUTE) -> str:
    """A frequent category's own name; a common or rare one's ``attribute`` ("other <shape>")."""
    return str(category["name"]) if category.get("frequency") == "f" else f"other {category[attribute]}"


class CoarseLabels(torch.utils.data.Dataset):
    """``dataset`` (an ``LVISDetection`` or a wrapper of one) with each box labelled 1..K by the coarse class
    of its category (``coarse_class``; K distinct classes, sorted by name). Flips, epochs and images pass
    through; the class statistics a loss or sampler takes are those of the coarse classes."""

    def __init__(self, dataset: Any, attribute: str = PRETRAIN_ATTRIBUTE) -> None:
        missing = [c.get("name", c.get("id")) for c in dataset.categories if attribute not in c]
        if missing:
            raise ValueError(f"pretraining labels boxes by the category field {attribute!r}, which categories "
                             f"{missing[:3]} of {dataset.ann_file} lack (the synthetic benchmark writes it)")
        self.dataset, self.attribute = dataset, attribute
        self.coarse_names = sorted({coarse_class(c, attribute) for c in dataset.categories})
        coarse = {name: i + 1 for i, name in enumerate(self.coarse_names)}
        by_id = {c["id"]: coarse[coarse_class(c, attribute)] for c in dataset.categories}
        # fine label 1..C → coarse label 1..K, index 0 (background) kept
        self.fine_to_coarse = torch.tensor([0] + [by_id[cid] for cid in dataset.label_to_category_id])

    def __len__(self) -> int:
        return len(self.dataset)

    def _relabel(self, item: tuple[torch.Tensor, dict[str, torch.Tensor]]):
        image, target = item
        return image, {**target, "labels": self.fine_to_coarse[target["labels"]]}

    def __getitem__(self, index: int):
        return self._relabel(self.dataset[index])

    def get(self, index: int, flip: bool | None = None):
        return self._relabel(self.dataset.get(index, flip))

    @property
    def flips(self) -> bool:
        return self.dataset.flips

    def is_flipped(self, index: int, epoch: int | None = None) -> bool:
        return self.dataset.is_flipped(index, epoch)

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    @property
    def ann_file(self) -> Any:
        return self.dataset.ann_file

    @property
    def num_classes(self) -> int:
        return len(self.coarse_names)

    @property
    def frequencies(self) -> list[str]:
        """Every coarse class counts as frequent: a frequent category, or a shape pooling many categories."""
        return ["f"] * self.num_classes

    @property
    def image_labels(self) -> list[tuple[int, ...]]:
        mapping = self.fine_to_coarse.tolist()
        return [tuple(sorted({mapping[label] for label in labels})) for labels in self.dataset.image_labels]

    def _per_class(self, fine_counts: list[int]) -> list[int]:
        counts = [0] * self.num_classes
        for fine, count in enumerate(fine_counts, start=1):
            counts[int(self.fine_to_coarse[fine]) - 1] += count
        return counts

    @property
    def image_counts(self) -> list[int]:
        return images_per_class(self.image_labels, self.num_classes)

    @property
    def instance_counts(self) -> list[int]:
        return self._per_class(list(self.dataset.instance_counts))
