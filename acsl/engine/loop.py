"""The one training loop of both stages (docs/ARCHITECTURE.md, "Training recipe"; paper §4.2).

``TrainLoop`` owns what every training run shares: SGD with momentum and weight decay, the per-iteration
lr schedule (linear warm-up, step decay), gradient clipping, AMP with a grad scaler, a stop on a
non-finite or exploding loss, the tqdm bar and ``log.jsonl``, and an atomic checkpoint after every epoch
that holds the model, optimizer, schedule position, grad scaler and every process's random streams, so
``resume`` continues an interrupted run to the same result as an uninterrupted one (bit for bit on the
CPU).

What one iteration computes is a *step kind* (``TrainStep``), in the spirit of detectron2's
``TrainerBase`` with its ``run_step``:

- ``acsl.engine.steps.DetectorStep``: the detector on a batch of images from a ``DataLoader``; stage 1
  trains the whole detector, stage 2 only the classifier (the official ACSL code's decoupled stage);
  data parallel under torchrun.
- ``acsl.engine.roi_cache.CachedClassifierStep``: stage 2's classifier on cached box-head features.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import nn
from tqdm import tqdm

from ..config import TrainConfig
from ..io import atomic_write_text, remove_stale_temporaries
from . import distributed
from .checkpoint import atomic_torch_save, load_checkpoint
from .schedule import lr_factor

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.jsonl"
#: Training stops when the loss exceeds EXPLOSION_FACTOR times the largest of its first
#: EXPLOSION_REFERENCE_ITERS values (after a start or a resume): a diverging run, not a noisy one.
EXPLOSION_FACTOR = 1000.0
EXPLOSION_REFERENCE_ITERS = 10


@dataclass
class StepOutput:
    """One iteration's result: ``loss`` is back-propagated (times ``weight``, this process's share of a
    data-parallel global batch); ``parts`` are logged; ``images`` counts the global batch."""

    loss: torch.Tensor
    parts: dict[str, torch.Tensor]
    images: int
    weight: float = 1.0


class TrainStep(Protocol):
    """What one kind of training iteration provides to ``TrainLoop``."""

    model: nn.Module  #: checkpointed; its ``classification_loss`` state is saved per process
    stage: int
    collective: bool  #: every process takes part (the loop then averages what it reports over them)
    description: str
    log_fields: dict  #: constant fields of every log record (e.g. ``{"cached": True}``)

    def parameters(self) -> list[nn.Parameter]: ...
    def start(self) -> None: ...
    def batches(self, epoch: int) -> Iterable: ...
    def run(self, batch) -> StepOutput: ...


def sgd_with_schedule(parameters: list[nn.Parameter], config: TrainConfig, iters_per_epoch: int):
    """SGD with momentum and weight decay, and its per-iteration lr schedule (linear warm-up, then step
    decay at ``config.lr_steps`` epochs; paper §4.2): the optimizer of both training stages."""
    optimizer = torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda it: lr_factor(it, iters_per_epoch, config.warmup_iters, config.warmup_ratio, config.lr_steps, config.gamma),
    )
    return optimizer, scheduler


def amp_settings(device: torch.device, amp: bool) -> tuple[bool, torch.dtype]:
    """(autocast on, its dtype): mixed precision on CUDA only, bf16 where the GPU has it, else fp16."""
    use_amp = amp and device.type == "cuda"
    return use_amp, torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16


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
    """The classification loss's own state (e.g. ACSL's generator), which differs between processes."""
    loss = model.classification_loss
    return loss.get_extra_state() if type(loss).get_extra_state is not nn.Module.get_extra_state else None


def truncate_log(path: Path, last_iteration: int) -> None:
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


class TrainLoop:
    """Runs ``step`` for ``config.epochs`` epochs of ``iters_per_epoch`` nominal iterations (the lr
    schedule's epoch length) and checkpoints into ``out_dir``. ``on_step(global_iteration)`` is called after
    every optimizer step. ``max_iters`` (a bounded sanity run) stops after that many optimizer steps, logs
    that iteration and checkpoints there; the checkpoint records ``iteration`` and ``max_iters``."""

    def __init__(self, step: TrainStep, config: TrainConfig, out_dir: str | Path, iters_per_epoch: int, *,
                 seed: int, device: torch.device, amp: bool = True, resume: bool = True, progress: bool = True,
                 on_step: Callable[[int], None] | None = None, max_iters: int | None = None) -> None:
        if max_iters is not None and max_iters < 1:
            raise ValueError(f"max_iters must be >= 1 (or None), got {max_iters}")
        self.step, self.config, self.device, self.max_iters = step, config, device, max_iters
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if (distributed.rank() if step.collective else 0) == 0:
            remove_stale_temporaries(self.out_dir, depth=1)  # what a killed run left behind
        self.checkpoint_path, self.log_path = self.out_dir / CHECKPOINT_NAME, self.out_dir / LOG_NAME
        self.rank = distributed.rank() if step.collective else 0
        self.world = distributed.world_size() if step.collective else 1
        self.is_main = self.rank == 0
        self.progress = progress and self.is_main
        self.on_step = on_step
        self.first_losses: list[float] = []  # the reference of the exploding-loss stop
        self.parameters = step.parameters()
        self.optimizer, self.scheduler = sgd_with_schedule(self.parameters, config, iters_per_epoch)
        self.use_amp, self.amp_dtype = amp_settings(device, amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        torch.manual_seed(seed + 1_000_003 * self.rank)
        self.start_epoch = self._resume() if resume and self.checkpoint_path.exists() else self._start_fresh()
        if step.collective:
            distributed.barrier()  # nobody starts while rank 0 may still be clearing a stale run

    def _start_fresh(self) -> int:
        if self.is_main:
            self.log_path.unlink(missing_ok=True)
            self.checkpoint_path.unlink(missing_ok=True)  # never pair a stale checkpoint with a fresh log
        return 0

    def _resume(self) -> int:
        # Loaded on the CPU: random-number states must stay CPU byte tensors; load_state_dict copies
        # weights onto the model's device.
        state = load_checkpoint(self.checkpoint_path, map_location="cpu")
        self.step.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state.get("scaler", {}))
        ranks = state.get("ranks")
        if ranks is not None and len(ranks) == self.world:  # the same number of processes: each takes its own
            _restore_rng_state(ranks[self.rank]["rng"], self.device)
            if ranks[self.rank]["loss"] is not None:
                self.step.model.classification_loss.set_extra_state(ranks[self.rank]["loss"])
        else:  # another number of processes (e.g. one): rank 0's streams
            _restore_rng_state(state["rng"], self.device)
        if self.is_main:
            truncate_log(self.log_path, self.scheduler.last_epoch)
        return int(state["epoch"])

    def run(self) -> Path:
        """Train the remaining epochs; returns the checkpoint's path."""
        self.step.start()
        for epoch in range(self.start_epoch, self.config.epochs):
            if self._reached_max_iters():
                break
            self._run_epoch(epoch)
            self._save(epoch + 1)
        return self.checkpoint_path

    def _reached_max_iters(self) -> bool:
        return self.max_iters is not None and self.scheduler.last_epoch >= self.max_iters

    def _run_epoch(self, epoch: int) -> None:
        batches = self.step.batches(epoch)
        bar = tqdm(batches, desc=f"{self.step.description} epoch {epoch + 1}/{self.config.epochs}",
                   disable=not self.progress, mininterval=2.0, leave=False)
        started, seen, last = time.perf_counter(), 0, len(batches) - 1
        for index, batch in enumerate(bar):
            iteration = self.scheduler.last_epoch  # optimizer steps so far (epochs may differ in length)
            try:
                output = self.step.run(batch)
            except FloatingPointError as error:  # e.g. non-finite logits, refused by the loss
                raise FloatingPointError(f"{error} (epoch {epoch + 1}, iteration {iteration + 1}; lr "
                                         f"{self.optimizer.param_groups[0]['lr']:.3g})") from error
            reported = self._reported(output, epoch, iteration)
            self._optimize(output)
            seen += output.images
            images_per_s = seen / max(time.perf_counter() - started, 1e-9)
            values = reported.tolist()
            bar.set_postfix(loss=f"{values[0]:.3f}", img_s=f"{images_per_s:.1f}", refresh=False)
            stop = self.max_iters is not None and iteration + 1 >= self.max_iters
            if self.is_main and (index % self.config.log_every == 0 or index == last or stop):
                self._log({"stage": self.step.stage, **self.step.log_fields, "epoch": epoch + 1,
                           "iteration": iteration + 1, "lr": self.optimizer.param_groups[0]["lr"], "loss": values[0],
                           **dict(zip(output.parts, values[1:])), "images_per_s": images_per_s})
            if self.on_step is not None:
                self.on_step(iteration + 1)
            if stop:
                break
        bar.close()

    def _reported(self, output: StepOutput, epoch: int, iteration: int) -> torch.Tensor:
        """The loss and its parts, averaged over the processes: what is logged; a non-finite value seen by
        one process stops every process."""
        values = torch.stack([output.loss.detach(), *[v.detach() for v in output.parts.values()]]).float()
        if self.step.collective:
            values = distributed.mean_over_ranks(values)
        parts = lambda: {k: round(v.item(), 4) for k, v in zip(output.parts, values[1:])}  # noqa: E731
        if not torch.isfinite(values).all():
            raise FloatingPointError(f"loss is {values[0].item()} at epoch {epoch + 1}, iteration {iteration + 1} "
                                     f"({parts()}); lower the lr or check the data")
        loss = values[0].item()
        if len(self.first_losses) < EXPLOSION_REFERENCE_ITERS:
            self.first_losses.append(loss)
        elif loss > EXPLOSION_FACTOR * max(max(self.first_losses), 1e-3):
            raise FloatingPointError(
                f"loss exploded to {loss:.4g} at epoch {epoch + 1}, iteration {iteration + 1} ({parts()}), over "
                f"{EXPLOSION_FACTOR:g}x its first values (at most {max(self.first_losses):.4g}); the lr "
                f"({self.optimizer.param_groups[0]['lr']:.3g} at batch size {self.config.batch_size}) is too high: "
                "lower the lr or the batch size")
        return values

    def _optimize(self, output: StepOutput) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss = output.loss * output.weight if output.weight != 1.0 else output.loss
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.parameters, self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()

    def _log(self, record: dict) -> None:
        with self.log_path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    def _save(self, epochs_done: int) -> None:
        model = self.step.model
        process = {"rng": _rng_state(self.device), "loss": _loss_state(model)}
        ranks = distributed.all_gather(process) if self.world > 1 else None
        if self.is_main:
            atomic_torch_save({
                "model": model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "epoch": epochs_done, "stage": self.step.stage, "config": asdict(self.config),
                "iteration": self.scheduler.last_epoch, "max_iters": self.max_iters,
                "world_size": self.world, "rng": _rng_state(self.device),
                "ranks": ranks,  # every process's random streams and loss state, for an exact resume
                **self.step.log_fields,
            }, self.checkpoint_path)
        if self.step.collective:
            distributed.barrier()
