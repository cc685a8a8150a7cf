"""Shared fixtures: the `smoke` profile's synthetic benchmark, generated once per test session."""

from __future__ import annotations

from dataclasses import replace

import pytest

from acsl.data import LVISDetection, generate_benchmark
from acsl.profiles import get_profile


@pytest.fixture(scope="session")
def smoke_bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "synthetic-smoke-seed0"
    return generate_benchmark(root, replace(get_profile("smoke").data, seed=0), progress=False)


@pytest.fixture(scope="session")
def smoke_train(smoke_bench):
    return LVISDetection(smoke_bench.train_json, smoke_bench.train_images, train=True, hflip_prob=0.5, seed=0)


@pytest.fixture(scope="session")
def smoke_val(smoke_bench):
    return LVISDetection(smoke_bench.val_json, smoke_bench.val_images)


def train_steps(model, images, targets, steps: int, lr: float = 0.02) -> list[float]:
    """SGD steps on one fixed batch; the total loss of each step, each checked finite. The expected loss
    names are torchvision's four (RPN objectness and box, RoI classifier and box)."""
    import torch

    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    history = []
    for _ in range(steps):
        losses = model(images, targets)
        assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
        loss = sum(losses.values())
        assert torch.isfinite(loss), losses
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    return history
