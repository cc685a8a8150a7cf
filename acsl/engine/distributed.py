"""Data parallel training on ``torch.distributed``, started by ``torchrun`` (docs/ARCHITECTURE.md, "Data parallel training").

``torchrun --nproc_per_node K -m acsl train ...`` starts K processes and sets ``RANK``, ``LOCAL_RANK``
and ``WORLD_SIZE``; ``process_group`` joins them (NCCL on GPUs, gloo on the CPU) and leaves cleanly.
Everything else in the engine asks ``rank()`` / ``world_size()``, which give 0 / 1 outside torchrun, so
one process needs no set-up at all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", 1)) > 1


def process_device(device: str | torch.device = "auto") -> torch.device:
    """The device of this process: under torchrun on GPUs ``cuda:LOCAL_RANK`` (an index given with
    ``cuda`` is overridden: each process drives its own GPU); ``"auto"`` picks CUDA when available,
    else the CPU."""
    device = str(device)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    resolved = torch.device(device)
    if resolved.type == "cuda" and launched_by_torchrun():
        return torch.device("cuda", local_rank())  # one GPU per process, whatever index was asked for
    if resolved.type == "cuda" and resolved.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return resolved


@contextmanager
def process_group(device: str | torch.device = "auto", timeout_s: float = 1800.0) -> Iterator[torch.device]:
    """Join the process group that torchrun's environment describes (a no-op for a single process) and
    yield this process's device; the group is destroyed on the way out, also after an error, so one
    failing rank ends the run instead of leaving the others waiting."""
    device = process_device(device)
    if not launched_by_torchrun() or is_distributed():
        yield device
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s),
                            device_id=device if device.type == "cuda" else None)
    try:
        yield device
    finally:
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


@contextmanager
def main_process_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. generating data or writing a file), the others after it."""
    if not is_main_process():
        barrier()
    try:
        yield
    finally:
        if is_main_process():
            barrier()


def all_gather(obj: T) -> list[T]:
    """Every rank's ``obj`` (picklable), in rank order, on every rank."""
    if not is_distributed():
        return [obj]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """The element-wise mean of ``values`` over all ranks (for logging and for a common NaN check)."""
    if not is_distributed():
        return values
    values = values.detach().clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / world_size()


def shard_weight(local_images: int, global_images: int) -> float:
    """The factor for this rank's mean loss so that DDP's average over ranks equals the mean over all
    images of the global batch when the ranks' shares differ (an uneven last batch): K·n_r/N."""
    return world_size() * local_images / global_images


def shard_batch(batch: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """This rank's part of one global batch of dataset indices: near-equal contiguous chunks in rank
    order. A final batch with fewer images than ranks is topped up from the start of the epoch's
    ``order`` (as ``DistributedSampler`` pads), so no rank ever gets an empty batch."""
    size = world_size()
    if size == 1:
        return batch
    if len(batch) < size:
        batch = torch.cat([batch, order[: size - len(batch)]])
    return batch.tensor_split(size)[rank()]
