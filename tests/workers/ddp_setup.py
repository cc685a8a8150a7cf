"""The detector and schedule that the distributed tests train both under torchrun and in one process.

Batch norms are frozen: trainable batch norms normalise over each process's own images, which is the
one thing that legitimately differs between K processes and one."""

from __future__ import annotations

from dataclasses import replace

import torch

from acsl.engine import TrainConfig
from acsl.losses import build_loss
from acsl.models import build_detector
from acsl.profiles import get_profile


def build_model(train_set):
    torch.manual_seed(0)
    config = replace(get_profile("smoke").detector, frozen_norm=True)
    loss = build_loss("softmax_ce", train_set.num_classes, train_set.frequencies)
    return build_detector(config, train_set.num_classes, loss)


def training_images(train_set):
    """23 of the 24 smoke images: the last batch of 3 splits 2/1 over two processes (an uneven share)."""
    from acsl.data.subset import FirstImages

    return FirstImages(train_set, 23)


def train_config(epochs: int) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=4, lr=0.01, warmup_iters=2, lr_steps=(), hflip_prob=0.5, log_every=1)


def image_sampler(images, name: str):
    """The epoch sampler the distributed tests use: uniform, or repeat-factor sampling with t = 0.3 (on the
    23 smoke images: 31 visits in epoch 0, so the last batch of 3 splits 2/1, as in the uniform case; a last
    batch of 1 would be padded on the second process, as DistributedSampler pads, and differ from one process)."""
    from acsl.data.samplers import build_sampler

    options = {"threshold": 0.3} if name == "repeat_factor" else {}
    return build_sampler(name, images.image_labels, seed=0, **options)
