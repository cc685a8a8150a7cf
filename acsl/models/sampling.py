"""Anchor and RoI sampling keyed by image, so that training does not depend on how a batch is split.

torchvision's ``BalancedPositiveNegativeSampler`` draws each image's positives and negatives (RPN: 256
anchors at 50 % positives; RoI head: 512 RoIs at 25 %, Ren et al. §3.1.3;
docs/ARCHITECTURE.md, "Training recipe") from the global random stream, so the draw for an image
depends on which images came before it in the batch and on the process. Under data parallel training
(docs/ARCHITECTURE.md, "Data parallel training") that makes a K-process run differ from a one-process
run with the same total batch. ``KeyedBalancedSampler`` makes the same draw — same counts, uniformly
without replacement — from a generator seeded by a per-image key that the trainer puts into each
target (``"sampling_key"``: seed, epoch and dataset index), so an image's samples are the same whatever
batch or process it lands in. Without keys it behaves exactly like torchvision's sampler.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler

SAMPLING_KEY = "sampling_key"
_MASK_64 = (1 << 64) - 1


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix64 finaliser over the running combination)."""
    state = 0x9E3779B97F4A7C15
    for part in parts:
        state = (state ^ (int(part) & _MASK_64)) & _MASK_64
        state = (state * 0xBF58476D1CE4E5B9) & _MASK_64
        state ^= state >> 31
        state = (state * 0x94D049BB133111EB) & _MASK_64
        state ^= state >> 29
    return state & ((1 << 63) - 1)


class KeyedBalancedSampler(BalancedPositiveNegativeSampler):
    """``batch_size_per_image`` samples per image, at most ``positive_fraction`` of them positive; with
    ``image_keys`` set, image i's draw comes from a generator seeded by ``(image_keys[i], salt)``.

    ``salt`` separates the RPN's draw from the RoI head's for the same image.
    """

    def __init__(self, batch_size_per_image: int, positive_fraction: float, salt: int) -> None:
        super().__init__(batch_size_per_image, positive_fraction)
        self.salt = salt
        self.image_keys: list[int] | None = None

    def __call__(self, matched_idxs: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        if self.image_keys is None:
            return super().__call__(matched_idxs)
        if len(self.image_keys) != len(matched_idxs):
            raise RuntimeError(f"{len(self.image_keys)} sampling keys for {len(matched_idxs)} images")
        positive_masks, negative_masks = [], []
        for key, matched in zip(self.image_keys, matched_idxs):
            generator = torch.Generator().manual_seed(mix_seed(key, self.salt))
            positive = torch.where(matched >= 1)[0]
            negative = torch.where(matched == 0)[0]
            num_positive = min(positive.numel(), int(self.batch_size_per_image * self.positive_fraction))
            num_negative = min(negative.numel(), self.batch_size_per_image - num_positive)
            chosen_positive = positive[torch.randperm(positive.numel(), generator=generator)[:num_positive].to(matched.device)]
            chosen_negative = negative[torch.randperm(negative.numel(), generator=generator)[:num_negative].to(matched.device)]
            positive_mask = torch.zeros_like(matched, dtype=torch.uint8)
            negative_mask = torch.zeros_like(matched, dtype=torch.uint8)
            positive_mask[chosen_positive] = 1
            negative_mask[chosen_negative] = 1
            positive_masks.append(positive_mask)
            negative_masks.append(negative_mask)
        return positive_masks, negative_masks
