"""Image samplers: which training images an epoch visits, in which order (docs/ARCHITECTURE.md, "Peer losses and samplers").

Every sampler gives, for an epoch, the global order of dataset indices — the same on every process,
computed from ``(seed, epoch)`` alone — and the trainer splits each global batch over the processes
(``distributed.shard_batch``). So each sampler is data-parallel aware by construction: K processes
see, together, exactly the images one process would.

- ``uniform``: every image once per epoch, shuffled (the plain schedule).
- ``repeat_factor``: repeat-factor sampling (Gupta et al., "LVIS", CVPR 2019, §5 / Appendix):
  r(c) = max(1, sqrt(t / f(c))) with f(c) the fraction of training images containing class c,
  r(image) = max over its classes (1 for an image without annotations); each epoch an image appears
  ⌊r⌋ times plus once more with probability r − ⌊r⌋ (stochastic rounding, drawn anew per epoch).
- ``class_balanced``: class-aware sampling (Shen et al., "Relay Backpropagation", ECCV 2016), the
  class-balanced sampling of cRT and LWS (Kang et al., ICLR 2020): each draw picks a class uniformly
  among the classes with training images, then an image containing it uniformly; ``len(dataset)``
  draws per epoch.

An epoch's length can differ from the dataset's (``repeat_factor``); ``nominal_length`` is its
expected length, which the lr schedule counts epochs in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..config import SAMPLERS

#: Salt that separates each sampler's random stream from the flips' and the RoI samplers'.
_SALT = {"uniform": 0, "repeat_factor": 7_919, "class_balanced": 104_729}


def _generator(seed: int, epoch: int, salt: int) -> torch.Generator:
    # The uniform order keeps the trainer's original seed formula, so plain runs are unchanged.
    return torch.Generator().manual_seed(seed * 100_003 + epoch + salt * 1_000_000_007)


class UniformSampler:
    """Every image once per epoch in a random order."""

    name = "uniform"

    def __init__(self, num_images: int, seed: int = 0) -> None:
        if num_images < 1:
            raise ValueError(f"a sampler needs at least one image, got {num_images}")
        self.num_images = int(num_images)
        self.seed = int(seed)

    @property
    def nominal_length(self) -> int:
        return self.num_images

    def epoch_indices(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.num_images, generator=_generator(self.seed, epoch, _SALT[self.name]))


def repeat_factors(image_labels: Sequence[Sequence[int]], threshold: float = 1e-3) -> torch.Tensor:
    """Per image, r(image) = max_{c in image} max(1, sqrt(t / f(c))) (Gupta et al. 2019, Appendix), with
    f(c) = (images containing c) / (all images); float64, 1 for images without annotations."""
    if threshold <= 0:
        raise ValueError(f"repeat-factor threshold t must be > 0, got {threshold!r}")
    num_images = len(image_labels)
    images_with: dict[int, int] = {}
    for labels in image_labels:
        for label in set(labels):
            images_with[label] = images_with.get(label, 0) + 1
    class_factor = {c: max(1.0, math.sqrt(threshold / (n / num_images))) for c, n in images_with.items()}
    return torch.tensor([max((class_factor[c] for c in set(labels)), default=1.0) for labels in image_labels],
                        dtype=torch.float64)


class RepeatFactorSampler(UniformSampler):
    """Repeat-factor sampling; see the module docstring. ``threshold`` is t (1e-3 in LVIS's paper)."""

    name = "repeat_factor"

    def __init__(self, image_labels: Sequence[Sequence[int]], seed: int = 0, threshold: float = 1e-3) -> None:
        super().__init__(len(image_labels), seed)
        self.threshold = float(threshold)
        self.factors = repeat_factors(image_labels, threshold)

    @property
    def nominal_length(self) -> int:
        return max(1, round(float(self.factors.sum())))

    def epoch_indices(self, epoch: int) -> torch.Tensor:
        generator = _generator(self.seed, epoch, _SALT[self.name])
        whole = self.factors.floor()
        extra = torch.rand(self.num_images, generator=generator, dtype=torch.float64) < (self.factors - whole)
        counts = (whole + extra).long()
        indices = torch.repeat_interleave(torch.arange(self.num_images), counts)
        return indices[torch.randperm(len(indices), generator=generator)]


class ClassBalancedSampler(UniformSampler):
    """Class-aware sampling; see the module docstring."""

    name = "class_balanced"

    def __init__(self, image_labels: Sequence[Sequence[int]], seed: int = 0) -> None:
        super().__init__(len(image_labels), seed)
        by_class: dict[int, list[int]] = {}
        for index, labels in enumerate(image_labels):
            for label in sorted(set(labels)):
                by_class.setdefault(label, []).append(index)
        if not by_class:
            raise ValueError("class-balanced sampling needs annotated images; no image has an annotation")
        self.classes = sorted(by_class)
        self.images_of_class = [torch.tensor(by_class[c]) for c in self.classes]

    def epoch_indices(self, epoch: int) -> torch.Tensor:
        generator = _generator(self.seed, epoch, _SALT[self.name])
        picked = torch.randint(len(self.classes), (self.num_images,), generator=generator)
        slots = torch.rand(self.num_images, generator=generator, dtype=torch.float64)
        sizes = torch.tensor([len(images) for images in self.images_of_class])
        within = (slots * sizes[picked]).long().clamp_max(sizes[picked] - 1)
        return torch.stack([self.images_of_class[c][w] for c, w in zip(picked.tolist(), within.tolist())])




def build_sampler(name: str, image_labels: Sequence[Sequence[int]], seed: int = 0, **options: float) -> UniformSampler:
    """The sampler registered under ``name`` over a dataset whose item i holds the classes
    ``image_labels[i]``; ``options``: ``threshold`` for ``repeat_factor``."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    allowed = {"repeat_factor": {"threshold"}}.get(name, set())
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"sampler {name!r} takes no option(s) {unknown}; it takes {sorted(allowed) or 'none'}")
    if name == "repeat_factor":
        return RepeatFactorSampler(image_labels, seed, **options)
    if name == "class_balanced":
        return ClassBalancedSampler(image_labels, seed)
    return UniformSampler(len(image_labels), seed)


def occurrences(order: torch.Tensor) -> torch.Tensor:
    """For each position of an epoch's ``order``, how many times its index appeared before it (0 for a
    first visit): repeated visits of an image get their own flips and RoI samples."""
    seen: dict[int, int] = {}
    out = []
    for index in order.tolist():
        out.append(seen.get(index, 0))
        seen[index] = out[-1] + 1
    return torch.tensor(out, dtype=torch.long)
