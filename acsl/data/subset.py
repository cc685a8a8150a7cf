"""The first images of a dataset, for runs bounded by iterations (benchmarks, the GPU check)."""

from __future__ import annotations

import torch


class FirstImages(torch.utils.data.Dataset):
    """The first ``count`` items of ``dataset``; ``set_epoch`` (per-epoch flips) passes through."""

    def __init__(self, dataset, count: int) -> None:
        if count < 1:
            raise ValueError(f"FirstImages needs count >= 1, got {count}")
        self.dataset, self.count = dataset, min(count, len(dataset))

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        if not 0 <= index < self.count:
            raise IndexError(f"index {index} out of range for the first {self.count} images")
        return self.dataset[index]

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)
