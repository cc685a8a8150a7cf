"""``train``: a detector on a dataset for one training stage (docs/ARCHITECTURE.md, "Training recipe").

The detector's step kind (``acsl.engine.steps.DetectorStep``) in the one training loop
(``acsl.engine.loop.TrainLoop``): SGD with momentum and weight decay, linear warm-up, step decay, gradient
clipping, AMP on CUDA, an atomic checkpoint per epoch and an exact resume. Stage 1 trains the whole
detector, stage 2 (decoupled, as in the official ACSL code) only the classifier's final linear layer.

Under ``torchrun`` (``distributed.process_group``) the same loop is data parallel: ``batch_size`` is the
total batch, split into equal contiguous parts of every global batch, one per process; anchors and RoIs
are sampled per image from a key of (seed, epoch, index), so K processes train like one with the same
total batch. Only rank 0 writes the checkpoint and the log and shows the bar.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..config import TrainConfig
from ..data.samplers import UniformSampler
from ..models import LongTailFasterRCNN
from . import distributed
from .loop import TrainLoop, amp_settings
from .steps import DetectorStep


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; under torchrun each process gets
    ``cuda:LOCAL_RANK``."""
    return distributed.process_device(device)


def train(
    model: LongTailFasterRCNN,
    dataset: Any,
    config: TrainConfig,
    out_dir: str | Path,
    stage: int = 1,
    seed: int = 0,
    device: str | torch.device = "auto",
    amp: bool = True,
    channels_last: bool = False,
    resume: bool = True,
    progress: bool = True,
    on_step: Callable[[int], None] | None = None,
    sampler: UniformSampler | None = None,
    workers: int = 0,
    max_iters: int | None = None,
) -> Path:
    """Train ``model`` on ``dataset`` for ``config.epochs`` epochs; returns the final checkpoint's path.

    ``amp``: mixed precision on CUDA (bf16 where the GPU supports it, else fp16 with a grad scaler);
    ignored on the CPU. ``channels_last``: NHWC memory layout for the convolutions (faster on tensor cores).
    With ``resume`` an existing ``out_dir/checkpoint.pt`` is continued from its last completed epoch
    (a finished run returns at once). ``on_step(global_iteration)`` is called after every optimizer step.
    ``sampler`` (``acsl.data.samplers``; default uniform) gives each epoch's image order; the lr schedule
    counts epochs of its ``nominal_length`` images. ``workers``: the ``DataLoader``'s loading processes.
    ``max_iters``: stop after that many iterations (a bounded sanity run; the schedule stays the config's).
    """
    if config.batch_size > len(dataset):  # before anything is created: the scaled lr would make training diverge
        raise ValueError(f"batch size {config.batch_size} is larger than the training set ({len(dataset)} images in "
                         f"{getattr(dataset, 'ann_file', 'the dataset')}); give a batch size of at most {len(dataset)}")
    device = resolve_device(device)
    use_amp, amp_dtype = amp_settings(device, amp)
    sampler = sampler or UniformSampler(len(dataset), seed)
    step = DetectorStep(model, dataset, sampler, config.batch_size, stage=stage, seed=seed, device=device,
                        amp_dtype=amp_dtype, use_amp=use_amp, channels_last=channels_last, workers=workers)
    iters_per_epoch = math.ceil(sampler.nominal_length / config.batch_size)
    return TrainLoop(step, config, out_dir, iters_per_epoch, seed=seed, device=device, amp=amp, resume=resume,
                     progress=progress, on_step=on_step, max_iters=max_iters).run()
