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
