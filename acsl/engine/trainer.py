"""The training loop (DESIGN §5): SGD with momentum and weight decay, linear warm-up, step decay,
gradient clipping, AMP on CUDA; stage 1 trains the whole detector, stage 2 (decoupled, as in the
official ACSL code) only the classifier's final linear layer, with RPN and RoI sampling still running.

Each epoch ends with an atomic checkpoint holding the model, optimizer, schedule position, AMP grad
scaler and every random-number state, so ``resume`` continues an interrupted run to the same result as
an uninterrupted one — bit for bit on the CPU; on CUDA up to the nondeterminism of kernels such as
RoIAlign's backward. A tqdm bar shows the loss and images/s; ``log.jsonl`` gets one JSON line per logged iteration.

Under ``torchrun`` (``distributed.process_group``) the same loop is data parallel: ``batch_size`` is the
total batch, split into equal contiguous parts of every global batch, one per process; DDP all-reduces
the gradients (batch norms that train become ``SyncBatchNorm`` on GPUs); anchors and RoIs are sampled
per image from a key of (seed, epoch, index), so K processes train like one with the same total batch.
Only rank 0 writes the checkpoint and the log and shows the bar.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from ..data import LVISDetection, collate_detection
from ..data.samplers import UniformSampler, occurrences
from ..models import LongTailFasterRCNN
from ..io import atomic_write_text
from ..models.sampling import SAMPLING_KEY, mix_seed
from . import distributed
from .checkpoint import atomic_torch_save, load_checkpoint
from .schedule import lr_factor

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.jsonl"


@dataclass(frozen=True)
class TrainConfig:
    """One training stage's schedule (DESIGN §5 gives the paper's values)."""

    epochs: int = 12
    batch_size: int = 16
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_iters: int = 500
    warmup_ratio: float = 1.0 / 3.0
    lr_steps: tuple[int, ...] = (8, 11)
    gamma: float = 0.1
    grad_clip: float = 35.0
    hflip_prob: float = 0.5
    log_every: int = 10

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"TrainConfig: epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if self.lr <= 0:
            raise ValueError(f"TrainConfig: lr must be > 0, got {self.lr}")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; under torchrun each process gets
    ``cuda:LOCAL_RANK``."""
    return distributed.process_device(device)


def scale_lr_to_batch(config: TrainConfig, total_batch: int) -> TrainConfig:
    """The linear scaling rule (Goyal et al. 2017): the lr grows with the total batch size;
    ``config``'s lr is the one for ``config.batch_size`` images per step."""
    if total_batch < 1:
        raise ValueError(f"total batch size must be >= 1, got {total_batch}")
    return replace(config, batch_size=total_batch, lr=config.lr * total_batch / config.batch_size)


def sgd_with_schedule(parameters: list[nn.Parameter], config: TrainConfig, iters_per_epoch: int):
    """SGD with momentum and weight decay, and its per-iteration lr schedule (linear warm-up, then
    step decay at ``config.lr_steps`` epochs, DESIGN §5): the optimizer of both training stages."""
    optimizer = torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda it: lr_factor(it, iters_per_epoch, config.warmup_iters, config.warmup_ratio, config.lr_steps, config.gamma),
    )
    return optimizer, scheduler


def visit_key(seed: int, epoch: int, index: int, visit: int = 0) -> int:
    """The sampling key of an image's ``visit``-th appearance in an epoch (0: the first; repeat-factor
    sampling visits some images more than once, and each visit draws its own anchors and RoIs)."""
    return mix_seed(seed, epoch, index) if visit == 0 else mix_seed(seed, epoch, index, visit)


def visit_flip(dataset: LVISDetection, index: int, epoch: int, visit: int = 0) -> bool:
    """Whether an image's ``visit``-th appearance in ``epoch`` is flipped: the epoch's flip for the first
    visit, the other orientation for the second, and so on alternately (never when flips are off)."""
    if not dataset.flips:
        return False
    return dataset.is_flipped(index, epoch) != bool(visit % 2)


def _visit(dataset: LVISDetection, index: int, epoch: int, visit: int):
    return dataset.get(index, visit_flip(dataset, index, epoch, visit)) if visit else dataset[index]


def _has_training_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def freeze_all_but_classifier(model: LongTailFasterRCNN) -> list[nn.Parameter]:
    """Stage 2: only the classifiers' final linear layers (weight and bias; Cascade R-CNN: all three
    heads', as the paper fine-tunes them) keep ``requires_grad``."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    trainable = [p for classifier in model.classifiers for p in classifier.parameters()]
    for parameter in trainable:
        parameter.requires_grad_(True)
    return trainable


def _set_train_mode(model: nn.Module, stage: int) -> None:
    model.train()
    if stage == 2:  # frozen layers keep their batch-norm statistics
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _restore_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _loss_state(model: nn.Module):
    """The classification loss's own state (e.g. ACSL's generator), which differs between ranks."""
    loss = model.classification_loss
    return loss.get_extra_state() if type(loss).get_extra_state is not nn.Module.get_extra_state else None


def _process_state(model: nn.Module, device: torch.device) -> dict:
    return {"rng": _rng_state(device), "loss": _loss_state(model)}


def _truncate_log(path: Path, last_iteration: int) -> None:
    """Drop log lines past the checkpoint (and a line cut short by the interruption), so a resumed
    run's log reads like an uninterrupted one."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("iteration", last_iteration + 1) <= last_iteration:
            kept.append(line)
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def train(
    model: LongTailFasterRCNN,
    dataset: LVISDetection,
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
) -> Path:
    """Train ``model`` on ``dataset`` for ``config.epochs`` epochs; returns the final checkpoint's path.

    ``amp``: mixed precision on CUDA (bf16 where the GPU supports it, else fp16 with a grad scaler);
    ignored on the CPU. ``channels_last``: NHWC memory layout for the convolutions (faster on tensor cores).
    With ``resume`` an existing ``out_dir/checkpoint.pt`` is continued from its last completed epoch
    (a finished run returns at once). ``on_step(global_iteration)`` is called after every optimizer step.
    ``sampler`` (``acsl.data.samplers``; default uniform) gives each epoch's image order; the lr schedule
    counts epochs of its ``nominal_length`` images.
    """
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 (whole detector) or 2 (classifier only), got {stage}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(device)
    rank, world = distributed.rank(), distributed.world_size()
    is_main = rank == 0
    if config.batch_size % world:
        raise ValueError(f"the total batch of {config.batch_size} images does not split over {world} processes; "
                         f"choose a batch size that is a multiple of {world}")
    if len(dataset) < world:
        raise ValueError(f"{len(dataset)} training images cannot feed {world} processes")
    progress = progress and is_main
    if world > 1 and device.type == "cuda" and stage == 1 and _has_training_batch_norm(model):
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # per-GPU batches are small
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)

    if stage == 2:
        parameters = freeze_all_but_classifier(model)
    else:
        parameters = [p for p in model.parameters() if p.requires_grad]
    sampler = sampler or UniformSampler(len(dataset), seed)
    iters_per_epoch = math.ceil(sampler.nominal_length / config.batch_size)
    optimizer, scheduler = sgd_with_schedule(parameters, config, iters_per_epoch)

    checkpoint_path = out_dir / CHECKPOINT_NAME
    log_path = out_dir / LOG_NAME
    use_amp = amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    start_epoch = 0
    torch.manual_seed(seed + 1_000_003 * rank)
    if resume and checkpoint_path.exists():
        # Loaded on the CPU: random-number states must stay CPU byte tensors; load_state_dict copies
        # weights onto the model's device.
        state = load_checkpoint(checkpoint_path, map_location="cpu")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state.get("scaler", {}))
        ranks = state.get("ranks")
        if ranks is not None and len(ranks) == world:  # the same number of processes: each takes its own
            _restore_rng_state(ranks[rank]["rng"], device)
            if ranks[rank]["loss"] is not None:
                model.classification_loss.set_extra_state(ranks[rank]["loss"])
        else:  # another number of processes (e.g. one): rank 0's streams
            _restore_rng_state(state["rng"], device)
        start_epoch = state["epoch"]
        if is_main:
            _truncate_log(log_path, scheduler.last_epoch)
    elif is_main:
        log_path.unlink(missing_ok=True)
        checkpoint_path.unlink(missing_ok=True)  # never pair a stale checkpoint with a fresh log
    distributed.barrier()  # nobody starts while rank 0 may still be clearing a stale run

    forward = model
    if world > 1:
        forward = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    for epoch in range(start_epoch, config.epochs):
        _set_train_mode(model, stage)
        dataset.set_epoch(epoch)
        order = sampler.epoch_indices(epoch)
        visits = occurrences(order)
        batches = order.split(config.batch_size)
        bar = tqdm(batches, desc=f"stage {stage} epoch {epoch + 1}/{config.epochs}", disable=not progress,
                   mininterval=2.0, leave=False)
        started = time.perf_counter()
        seen = 0
        for step, global_batch in enumerate(bar):
            iteration = scheduler.last_epoch  # optimizer steps so far (epochs may differ in length)
            first = step * config.batch_size
            positions = distributed.shard_batch(torch.arange(first, first + len(global_batch)), torch.arange(len(order)))
            batch_indices, batch_visits = order[positions], visits[positions]
            images, targets = collate_detection([_visit(dataset, index, epoch, visit)
                                                 for index, visit in zip(batch_indices.tolist(), batch_visits.tolist())])
            for target, index, visit in zip(targets, batch_indices.tolist(), batch_visits.tolist()):
                target[SAMPLING_KEY] = torch.tensor(visit_key(seed, epoch, index, visit))
            images = [image.to(device, non_blocking=True) for image in images]
            targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
            with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
                losses = forward(images, targets)
            loss = losses["loss_classifier"] if stage == 2 else sum(losses.values())
            # DDP averages the ranks' gradients; weighting each rank's mean by its share of the global batch
            # makes that the mean over all images also when the shares differ (an uneven last batch).
            weight = distributed.shard_weight(len(batch_indices), max(len(global_batch), world)) if world > 1 else 1.0
            # The mean over processes: what is logged, and a NaN seen by one rank stops every rank.
            reported = distributed.mean_over_ranks(torch.stack([loss.detach(), *[v.detach() for v in losses.values()]]).float())
            if not torch.isfinite(reported).all():
                raise FloatingPointError(
                    f"loss is {reported[0].item()} at epoch {epoch + 1}, iteration {iteration} "
                    f"({ {k: round(v.item(), 4) for k, v in zip(losses, reported[1:])} }); lower the lr or check the data"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss * weight if weight != 1.0 else loss).backward()
            scaler.unscale_(optimizer)
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(parameters, config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()

            seen += len(global_batch)
            images_per_s = seen / max(time.perf_counter() - started, 1e-9)
            values = reported.tolist()
            bar.set_postfix(loss=f"{values[0]:.3f}", img_s=f"{images_per_s:.1f}", refresh=False)
            if is_main and (step % config.log_every == 0 or step == len(batches) - 1):
                record = {
                    "stage": stage, "epoch": epoch + 1, "iteration": iteration + 1,
                    "lr": optimizer.param_groups[0]["lr"], "loss": values[0],
                    **dict(zip(losses, values[1:])), "images_per_s": images_per_s,
                }
                with log_path.open("a") as handle:
                    handle.write(json.dumps(record) + "\n")
            if on_step is not None:
                on_step(iteration + 1)
        bar.close()
        ranks = distributed.all_gather(_process_state(model, device)) if world > 1 else None
        if is_main:
            atomic_torch_save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "epoch": epoch + 1,
                    "stage": stage,
                    "config": asdict(config),
                    "world_size": world,
                    "rng": _rng_state(device),
                    "ranks": ranks,  # every process's random streams and loss state, for an exact resume
                },
                checkpoint_path,
            )
        distributed.barrier()
    return checkpoint_path


def load_stage1_weights(model: LongTailFasterRCNN, checkpoint_path: str | Path) -> None:
    """Stage 2 starts from the stage-1 detector: every weight is loaded, nothing re-initialised; the
    loss module's own state (e.g. ACSL's generator) is not part of the detector and is skipped. A
    classifier with more outputs than stage 1's (BAGS) gets stage 1's rows first."""
    state = load_checkpoint(checkpoint_path)["model"]
    weights = {k: v for k, v in state.items() if ".classification_loss." not in k}
    own = model.state_dict()
    for key, value in weights.items():
        # A stage-2 classifier with extra outputs (BAGS's "others"): the stage-1 rows are copied into the
        # first rows, the extra rows keep their fresh initialisation.
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
