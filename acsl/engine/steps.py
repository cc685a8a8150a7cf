"""The detector's training step, and the weights each training stage starts from and trains.

``DetectorStep`` is ``TrainLoop``'s step kind for the whole detector on images: stage 1 trains every
parameter; stage 2 (the official ACSL code's decoupled stage; docs/ARCHITECTURE.md, "The method,
exactly") only the classifier's final layer, with RPN and RoI sampling still running and batch norms
frozen. Under torchrun the model is wrapped in ``DistributedDataParallel`` (trainable batch norms become
``SyncBatchNorm`` on GPUs, whose per-GPU batches are small); docs/ARCHITECTURE.md, "Data parallel training".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.samplers import UniformSampler
from ..models import LongTailFasterRCNN
from . import distributed
from .checkpoint import load_checkpoint
from .loader import training_loader
from .loop import StepOutput


def freeze_all_but_classifier(model: LongTailFasterRCNN) -> list[nn.Parameter]:
    """Stage 2: only the classifiers' final linear layers (weight and bias; Cascade R-CNN: all three
    heads', as the paper fine-tunes them) keep ``requires_grad``."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    trainable = [p for classifier in model.classifiers for p in classifier.parameters()]
    for parameter in trainable:
        parameter.requires_grad_(True)
    return trainable


def set_train_mode(model: nn.Module, stage: int) -> None:
    """Training mode; in stage 2 the frozen layers keep their batch-norm statistics."""
    model.train()
    if stage == 2:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


def _has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


class DetectorStep:
    """One iteration of the detector on this process's share of a global batch of images."""

    collective = True
    log_fields: dict = {}

    def __init__(self, model: LongTailFasterRCNN, dataset: Any, sampler: UniformSampler, batch_size: int, *,
                 stage: int, seed: int, device: torch.device, amp_dtype: torch.dtype, use_amp: bool,
                 channels_last: bool = False, workers: int = 0) -> None:
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 (whole detector) or 2 (classifier only), got {stage}")
        self.world = distributed.world_size()
        if batch_size % self.world:
            raise ValueError(f"the total batch of {batch_size} images does not split over {self.world} processes; "
                             f"choose a batch size that is a multiple of {self.world}")
        if len(dataset) < self.world:
            raise ValueError(f"{len(dataset)} training images cannot feed {self.world} processes")
        if self.world > 1 and device.type == "cuda" and stage == 1 and _has_batch_norm(model):
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model.to(device)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        self.model, self.dataset, self.stage, self.device = model, dataset, stage, device
        self.use_amp, self.amp_dtype = use_amp, amp_dtype
        self.description = f"stage {stage}"
        self.loader = training_loader(dataset, sampler, batch_size, seed, workers, pin_memory=device.type == "cuda")
        self.forward: nn.Module = model

    def parameters(self) -> list[nn.Parameter]:
        if self.stage == 2:
            return freeze_all_but_classifier(self.model)
        return [p for p in self.model.parameters() if p.requires_grad]

    def start(self) -> None:
        """After a resume: DDP broadcasts the (restored) weights from rank 0 when it wraps the model."""
        if self.world > 1:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward = nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)

    def batches(self, epoch: int):
        set_train_mode(self.model, self.stage)
        self.dataset.set_epoch(epoch)
        self.loader.batch_sampler.set_epoch(epoch)
        return self.loader

    def run(self, batch) -> StepOutput:
        images, targets, global_size = batch
        images = [image.to(self.device, non_blocking=True) for image in images]
        targets = [{k: v.to(self.device, non_blocking=True) for k, v in t.items()} for t in targets]
        with torch.autocast(device_type=self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            losses = self.forward(images, targets)
        loss = losses["loss_classifier"] if self.stage == 2 else sum(losses.values())
        # DDP averages the processes' gradients; weighting each process's mean by its share of the global
        # batch makes that the mean over all images also when the shares differ (an uneven last batch).
        weight = distributed.shard_weight(len(images), max(global_size, self.world)) if self.world > 1 else 1.0
        return StepOutput(loss, losses, global_size, weight)


def load_stage1_weights(model: LongTailFasterRCNN, checkpoint_path: str | Path) -> None:
    """Stage 2 starts from the stage-1 detector: every weight is loaded, nothing re-initialised; the
    loss module's own state (e.g. ACSL's generator) is not part of the detector and is skipped. A
    classifier with more outputs than stage 1's (BAGS's "others") gets stage 1's rows first, the extra
    rows keep their fresh initialisation."""
    state = load_checkpoint(checkpoint_path)["model"]
    weights = {k: v for k, v in state.items() if ".classification_loss." not in k}
    own = model.state_dict()
    for key, value in weights.items():
        target = own.get(key)
        if (".cls_score." in key and target is not None and target.shape != value.shape and value.dim() == target.dim()
                and target.shape[0] > value.shape[0] and target.shape[1:] == value.shape[1:]):
            widened = target.clone()
            widened[: value.shape[0]] = value
            weights[key] = widened
    try:
        missing, unexpected = model.load_state_dict(weights, strict=False)
    except RuntimeError as error:  # shape mismatch
        raise RuntimeError(f"stage-1 checkpoint {checkpoint_path} does not fit this detector: {error}") from None
    missing = [k for k in missing if ".classification_loss." not in k]
    if missing or unexpected:
        raise RuntimeError(
            f"stage-1 checkpoint {checkpoint_path} does not fit this detector: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
