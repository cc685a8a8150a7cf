"""The first images of a dataset, for runs bounded by images (``--subset N``, benchmarks, the GPU check)."""

from __future__ import annotations

from typing import Any

import torch


def images_per_class(image_labels: list[tuple[int, ...]], num_classes: int) -> list[int]:
    """Per label 1..C: how many of the images (each given by its labels) contain the class."""
    counts = [0] * num_classes
    for labels in image_labels:
        for label in labels:
            counts[label - 1] += 1
    return counts


class FirstImages(torch.utils.data.Dataset):
    """The first ``count`` items of ``dataset``; ``set_epoch``, ``is_flipped`` and ``get`` (per-epoch and
    explicit flips) pass through, ``image_labels`` (for image samplers), ``image_ids`` and the class
    statistics a loss takes (``image_counts``, ``instance_counts``) are those of the same items; every
    other attribute (categories, ``frequencies`` from the full dataset's ``frequency`` field, label maps)
    is the dataset's."""

    def __init__(self, dataset, count: int) -> None:
        if count < 1:
            raise ValueError(f"FirstImages needs count >= 1, got {count}")
        self.dataset, self.count = dataset, min(count, len(dataset))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("dataset", "count"):  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __len__(self) -> int:
        return self.count

    def _check(self, index: int) -> None:
        if not 0 <= index < self.count:
            raise IndexError(f"index {index} out of range for the first {self.count} images")

    def __getitem__(self, index: int):
        self._check(index)
        return self.dataset[index]

    def get(self, index: int, flip: bool | None = None):
        self._check(index)
        return self.dataset.get(index, flip)

    @property
    def flips(self) -> bool:
        return self.dataset.flips

    def is_flipped(self, index: int, epoch: int | None = None) -> bool:
        return self.dataset.is_flipped(index, epoch)

    @property
    def image_labels(self) -> list[tuple[int, ...]]:
        return self.dataset.image_labels[: self.count]

    @property
    def image_ids(self) -> list[int]:
        return list(self.dataset.image_ids[: self.count])

    def _annotations(self) -> list[dict]:
        index = self.dataset.lvis.img_ann_map
        return [a for image_id in self.image_ids for a in index.get(image_id, [])]

    @property
    def image_counts(self) -> list[int]:
        """Per label 1..C: images among these items that contain the class."""
        return images_per_class(self.image_labels, self.dataset.num_classes)

    @property
    def instance_counts(self) -> list[int]:
        """Per label 1..C: boxes of the class among these items."""
        counts = [0] * self.dataset.num_classes
        for annotation in self._annotations():
            counts[self.dataset.category_id_to_label[annotation["category_id"]] - 1] += 1
        return counts

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)
