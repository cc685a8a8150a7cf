"""Run under `torchrun --nproc_per_node 2`: each rank feeds EQLv2 its own batches for three steps; rank 0
writes every rank's accumulated statistics and the batches, as JSON, to the path given."""

from __future__ import annotations

import json
import sys

import torch

from acsl.engine import distributed
from acsl.losses import build_loss

C = 12


def batch(rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 * step + rank)
    logits = torch.randn(16, C + 1, generator=g, dtype=torch.float64) * 3
    labels = torch.randint(0, C + 1, (16,), generator=g)
    return logits, labels


def main() -> None:
    with distributed.process_group("cpu"):
        loss = build_loss("eqlv2", C)
        for step in range(3):
            logits, labels = batch(distributed.rank(), step)
            loss(logits.requires_grad_(True), labels).backward()
        states = distributed.all_gather({"pos": loss.pos_grad.tolist(), "neg": loss.neg_grad.tolist()})
        if distributed.is_main_process():
            with open(sys.argv[1], "w") as handle:
                json.dump(states, handle)


if __name__ == "__main__":
    main()
