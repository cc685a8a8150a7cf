"""Random draws of the losses that never read a value back to the host (docs/ARCHITECTURE.md, "The method,
exactly": the background schedule; issue "No silent wrong numbers", item 9).

A draw whose size depends on the batch, such as ACSL's floor(0.1 · n_bg) background RoIs or the federated loss's
classes missing from a batch, is most simply made by reading that size back (``nonzero``, ``int(t.sum())``) and
drawing on the host: on a GPU each such read waits for the device, every step. These draws stay on the device:
every candidate gets a random key, and a candidate is drawn when the rank of its key is below the count, itself a
tensor on the device. The result is a boolean mask.

- ``uniform_subset``: a uniformly random subset of exactly ``count`` candidates (every subset of that size equally
  likely: the ranks of i.i.d. uniform keys are a uniformly random permutation).
- ``weighted_subset``: ``count`` entries drawn without replacement with probabilities ∝ their weights, by the
  keys u^(1/w) (Efraimidis and Spirakis, "Weighted random sampling with a reservoir", IPL 2006: the entries with
  the largest keys are such a draw), computed as log(u) / w; entries of weight 0 are never drawn.

ACSL, BAGS and the federated loss use them on a GPU. On the CPU they keep their host draws (``torch.randperm``,
``torch.multinomial``), which every stored CPU run was trained with, so a CPU run's numbers do not change; the
two streams differ, so such a loss on a GPU draws other (equally distributed) subsets than on the CPU. DropLoss
and GOL, newer, draw their uniform numbers for every RoI on every device (one path).
"""

from __future__ import annotations

import torch


def ranks(keys: torch.Tensor) -> torch.Tensor:
    """The rank of each entry of the 1-D ``keys`` in ascending order (0: the smallest; ties by position)."""
    order = torch.argsort(keys, stable=True)
    return torch.empty_like(order).scatter_(0, order, torch.arange(len(keys), device=keys.device))


def floor_fraction(fraction: float, count: torch.Tensor) -> torch.Tensor:
    """floor(fraction · count) on the device, robust to binary rounding (0.1 · 30 gives 3), as
    ``math.floor(round(fraction * count, 9))`` does on the host."""
    return torch.floor(torch.round(count.to(torch.float64) * fraction, decimals=9)).to(torch.long)


def uniform_subset(candidates: torch.Tensor, count: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mask of a uniformly random ``min(count, #candidates)`` of the ``candidates`` (a 1-D boolean mask)."""
    keys = torch.rand(candidates.shape, generator=generator, device=candidates.device)
    keys = torch.where(candidates, keys, torch.full_like(keys, 2.0))  # non-candidates rank last
    return candidates & (ranks(keys) < count)


def weighted_subset(weights: torch.Tensor, count: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mask of ``min(count, #positive weights)`` entries of the 1-D ``weights`` drawn without replacement with
    probability ∝ weight (module docstring); weight-0 entries are never drawn."""
    u = torch.rand(weights.shape, generator=generator, device=weights.device, dtype=torch.float64)
    positive = weights > 0
    keys = torch.where(positive, u.log() / weights.to(torch.float64), torch.full_like(u, -float("inf")))
    return positive & (ranks(-keys) < count)
