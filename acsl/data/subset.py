"""The first images of a dataset, for runs bounded by iterations (benchmarks, the GPU check)."""

from __future__ import annotations

import torch


class FirstImages(torch.utils.data.Dataset):
    """The first ``count`` items of ``dataset``; ``set_epoch``, ``is_flipped`` and ``get`` (per-epoch and
    explicit flips) pass through, and ``image_labels`` (for image samplers) is cut to the same items."""

    def __init__(self, dataset, count: int) -> None:
        if count < 1:
            raise ValueError(f"FirstImages needs count >= 1, got {count}")
        self.dataset, self.count = dataset, min(count, len(dataset))

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

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)
