"""Run under `torchrun --nproc_per_node 2`: each rank builds EQLv2 through mmdet's registry (scope acsl) and
feeds it, in mmdet's layout, the batches of ``eqlv2_sync.batch`` for three steps; rank 0 writes every rank's
accumulated statistics, as JSON, to the path given. torch.distributed is initialised as mmengine does it
for mmdet's distributed training (``init_process_group`` from torchrun's environment), on gloo."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
from eqlv2_sync import C, batch  # noqa: E402


def main() -> None:
    dist.init_process_group("gloo")
    from acsl.integrations.mmdet import MODELS

    loss = MODELS.build(dict(type="EQLv2", num_classes=C))
    for step in range(3):
        logits, labels = batch(dist.get_rank(), step)  # acsl layout → mmdet's: background last, label C
        mmdet_logits = torch.cat([logits[:, 1:], logits[:, :1]], dim=1).requires_grad_(True)
        mmdet_labels = torch.where(labels == 0, C, labels - 1)
        loss(mmdet_logits, mmdet_labels, torch.ones(len(labels)), avg_factor=float(len(labels))).backward()
    states = [None] * dist.get_world_size()
    dist.all_gather_object(states, {"pos": loss.loss.pos_grad.tolist(), "neg": loss.loss.neg_grad.tolist()})
    if dist.get_rank() == 0:
        Path(sys.argv[1]).write_text(json.dumps(states))
    dist.barrier()  # both ranks leave together: a rank that tears gloo down while the other still talks aborts it
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
    # Leave without the interpreter's teardown: with mmdet imported, a rank's exit now and then ran into
    # "terminate called without an active exception" (a C++ thread destroyed at exit) after its work was done
    # and written, and torchrun then failed the launch.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
