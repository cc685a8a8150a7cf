"""Run under `torchrun --nproc_per_node 2`: each rank feeds EFL its half of every step's anchors, normalised by
the positives averaged over the ranks (RetinaNet's avg_factor under data parallelism), for three steps; rank 0
writes every rank's statistics g, and the accumulators, as JSON, to the path given."""

from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist

from acsl.engine import distributed
from acsl.losses.efl import EqualizedFocalLoss

C = 9


def batch(rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One rank's anchors: 200, about a tenth positive, a few ignored."""
    g = torch.Generator().manual_seed(100 * step + rank)
    logits = torch.randn(200, C, generator=g, dtype=torch.float64) * 2 - 2
    labels = torch.where(torch.rand(200, generator=g) < 0.1, torch.randint(1, C + 1, (200,), generator=g), 0)
    labels[:3] = -1
    return logits, labels


def main() -> None:
    with distributed.process_group("cpu"):
        loss = EqualizedFocalLoss(C)
        for step in range(3):
            logits, labels = batch(distributed.rank(), step)
            positives = (labels > 0).sum().double()
            dist.all_reduce(positives)
            loss(logits.requires_grad_(True), labels, positives / dist.get_world_size()).backward()
        states = distributed.all_gather({"g": loss.pos_neg.tolist(), "pos": loss.pos_grad.tolist(),
                                         "neg": loss.neg_grad.tolist()})
        if distributed.is_main_process():
            with open(sys.argv[1], "w") as handle:
                json.dump(states, handle)


if __name__ == "__main__":
    main()
