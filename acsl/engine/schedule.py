"""The learning-rate schedule of the paper's recipe (paper §4.2; docs/ARCHITECTURE.md, "Training recipe"): linear warm-up over the first
``warmup_iters`` iterations starting at ``warmup_ratio`` × lr, then step decay by ``gamma`` at the listed
epochs (the "1x" schedule: 12 epochs, ×0.1 at epochs 8 and 11)."""

from __future__ import annotations

from collections.abc import Sequence


def lr_factor(
    iteration: int,
    iters_per_epoch: int,
    warmup_iters: int,
    warmup_ratio: float,
    lr_steps: Sequence[int],
    gamma: float,
) -> float:
    """Multiplier of the base lr at a 0-based global ``iteration``."""
    epoch = iteration // max(iters_per_epoch, 1)
    factor = gamma ** sum(1 for step in lr_steps if epoch >= step)
    if iteration < warmup_iters:
        factor *= warmup_ratio + (1.0 - warmup_ratio) * iteration / warmup_iters
    return factor
