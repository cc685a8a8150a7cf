"""The training images of one epoch as a ``torch.utils.data.DataLoader``.

An epoch is the image order of an image sampler (``acsl.data.samplers``: uniform, repeat-factor or
class-aware), cut into global batches of ``batch_size`` images; under data parallel training each
process takes its contiguous share of every global batch (``distributed.shard_batch``; docs/ARCHITECTURE.md,
"Data parallel training"). The batch sampler runs in the main process and hands the workers items of
(index, visit, epoch, global batch size), so an item alone decides its image, its flip and its sampling
key: loading is the same with 0 or N workers, and resuming at an epoch needs no loader state.

- ``visit``: an image's appearance number within the epoch (repeat-factor sampling visits some images
  more than once). The first visit takes the epoch's flip, later ones alternate (``visit_flip``).
- the sampling key (``visit_key``) seeds the image's anchor and RoI draws (``acsl.models.sampling``),
  so K processes with the same total batch train like one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data.samplers import UniformSampler, occurrences
from ..models.sampling import SAMPLING_KEY, mix_seed
from . import distributed

#: One training item: (dataset index, visit number in the epoch, epoch, images in its global batch).
Visit = tuple[int, int, int, int]


def visit_key(seed: int, epoch: int, index: int, visit: int = 0) -> int:
    """The sampling key of an image's ``visit``-th appearance in an epoch (0: the first; repeat-factor
    sampling visits some images more than once, and each visit draws its own anchors and RoIs)."""
    return mix_seed(seed, epoch, index) if visit == 0 else mix_seed(seed, epoch, index, visit)


def visit_flip(dataset: Any, index: int, epoch: int, visit: int = 0) -> bool:
    """Whether an image's ``visit``-th appearance in ``epoch`` is flipped: the epoch's flip for the first
    visit, the other orientation for the second, and so on alternately (never when flips are off)."""
    if not dataset.flips:
        return False
    return dataset.is_flipped(index, epoch) != bool(visit % 2)


class EpochBatches(Sampler[list[Visit]]):
    """This process's share of every global batch of the current epoch (``set_epoch`` before iterating)."""

    def __init__(self, sampler: UniformSampler, batch_size: int) -> None:
        self.sampler, self.batch_size = sampler, batch_size
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.order = self.sampler.epoch_indices(epoch)
        self.visits = occurrences(self.order)

    def __len__(self) -> int:
        return -(-len(self.order) // self.batch_size)

    def __iter__(self) -> Iterator[list[Visit]]:
        everything = torch.arange(len(self.order))
        for first in range(0, len(self.order), self.batch_size):
            global_size = min(self.batch_size, len(self.order) - first)
            positions = distributed.shard_batch(torch.arange(first, first + global_size), everything)
            yield [(index, visit, self.epoch, global_size)
                   for index, visit in zip(self.order[positions].tolist(), self.visits[positions].tolist())]


class VisitDataset(Dataset):
    """``dataset``'s image and target for one ``Visit``, the target carrying its sampling key."""

    def __init__(self, dataset: Any, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: Visit) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        index, visit, epoch, global_size = item
        image, target = self.dataset.get(index, visit_flip(self.dataset, index, epoch, visit))
        target[SAMPLING_KEY] = torch.tensor(visit_key(self.seed, epoch, index, visit))
        return image, target, global_size


def collate_visits(items: list[tuple[torch.Tensor, dict[str, torch.Tensor], int]]):
    """(images, targets, images in the global batch), torchvision's list-of-images form."""
    return [item[0] for item in items], [item[1] for item in items], items[0][2]


def training_loader(dataset: Any, sampler: UniformSampler, batch_size: int, seed: int, workers: int = 0,
                    pin_memory: bool = False) -> DataLoader:
    """The ``DataLoader`` of a training run: ``EpochBatches`` as its batch sampler (call
    ``loader.batch_sampler.set_epoch(epoch)`` before each epoch), ``workers`` loading processes (kept
    alive across epochs), pinned memory for CUDA. Its own generator leaves the global random stream
    (which the checkpoint saves for an exact resume) untouched."""
    if workers < 0:
        raise ValueError(f"loader workers must be >= 0, got {workers}")
    return DataLoader(VisitDataset(dataset, seed), batch_sampler=EpochBatches(sampler, batch_size),
                      collate_fn=collate_visits, num_workers=workers, pin_memory=pin_memory,
                      persistent_workers=workers > 0, generator=torch.Generator().manual_seed(seed))
