"""Data parallel training under torchrun on the CPU (gloo): K processes train like one process with the
same total batch (an uneven last batch included; also with repeat-factor sampling), sharded inference equals one process, a DDP checkpoint resumes in one process, one
failing rank ends the run, and `torchrun -m acsl eval` works end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from acsl.engine import load_checkpoint, predict, train

WORKERS = Path(__file__).parent / "workers"
sys.path.insert(0, str(WORKERS))
from ddp_setup import build_model, image_sampler, train_config, training_images  # noqa: E402


def torchrun(*arguments: str, timeout: float = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *arguments]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def model_state(checkpoint: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_checkpoint(checkpoint)["model"].items() if v.is_floating_point()}


def assert_states_close(a: dict, b: dict, tolerance: float = 1e-4) -> None:
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < tolerance, f"largest parameter difference {worst}"


@pytest.fixture(scope="module")
def ddp_run(smoke_bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    finished = torchrun(str(WORKERS / "ddp_train.py"), str(smoke_bench.root), str(out))
    assert finished.returncode == 0, finished.stderr[-4000:]
    return out


def test_two_processes_train_like_one_process_with_the_same_total_batch(ddp_run, smoke_train, tmp_path):
    initial = {k: v.clone() for k, v in build_model(smoke_train).state_dict().items() if v.is_floating_point()}
    single = train(build_model(smoke_train), training_images(smoke_train), train_config(epochs=1), tmp_path, seed=0,
                   device="cpu", progress=False)
    distributed_state, single_state = model_state(ddp_run / "checkpoint.pt"), model_state(single)
    assert_states_close(distributed_state, single_state)
    moved = max((single_state[k] - initial[k]).abs().max().item() for k in initial)
    assert moved > 1e-3  # training did change the weights: the comparison is not between two untouched models
    checkpoint = load_checkpoint(ddp_run / "checkpoint.pt")
    assert checkpoint["world_size"] == 2 and checkpoint["epoch"] == 1
    # Rank 0 alone writes the log: one line per iteration, the losses averaged over both processes.
    lines = [json.loads(line) for line in (ddp_run / "log.jsonl").read_text().splitlines()]
    assert [line["iteration"] for line in lines] == [1, 2, 3, 4, 5, 6]  # ceil(23 / 4)
    assert len(checkpoint["ranks"]) == 2  # both processes' random streams, for an exact resume


def test_repeat_factor_sampling_over_two_processes_trains_like_one_process(smoke_bench, smoke_train, tmp_path):
    """RFS repeats some images (each visit with its own flip and RoI draw); the epoch's order is computed
    alike on every rank and each global batch is split, so two processes still train like one."""
    images = training_images(smoke_train)
    sampler = image_sampler(images, "repeat_factor")
    assert len(sampler.epoch_indices(0)) > len(images)  # the epoch does repeat images
    assert len(sampler.epoch_indices(0)) % 4 >= 2  # no last batch smaller than the two processes (padding)
    finished = torchrun(str(WORKERS / "ddp_train.py"), str(smoke_bench.root), str(tmp_path / "ddp"), "--sampler", "repeat_factor")
    assert finished.returncode == 0, finished.stderr[-4000:]
    single = train(build_model(smoke_train), images, train_config(epochs=1), tmp_path / "one", seed=0, device="cpu",
                   progress=False, sampler=sampler)
    assert_states_close(model_state(tmp_path / "ddp" / "checkpoint.pt"), model_state(single))
    lines = [json.loads(line) for line in (tmp_path / "one" / "log.jsonl").read_text().splitlines()]
    assert lines[-1]["iteration"] == -(-len(sampler.epoch_indices(0)) // 4)


def test_sharded_inference_equals_one_process(ddp_run, smoke_train, smoke_val):
    gathered = json.loads((ddp_run / "detections.json").read_text())
    model = build_model(smoke_train)
    model.load_state_dict(load_checkpoint(ddp_run / "checkpoint.pt")["model"])
    single = predict(model, smoke_val, batch_size=3, device="cpu", progress=False)
    assert len(gathered) == len(single) > 0
    # Image order is the dataset's; inside an image, detections whose scores tie to float precision may
    # come in either order, so compare them sorted by class and box.
    assert [d["image_id"] for d in gathered] == [d["image_id"] for d in single]

    def canonical(detections):
        return sorted(detections, key=lambda d: (d["image_id"], d["category_id"], *(round(v, 1) for v in d["bbox"])))

    for a, b in zip(canonical(gathered), canonical(single)):
        assert (a["image_id"], a["category_id"]) == (b["image_id"], b["category_id"])
        assert a["score"] == pytest.approx(b["score"], abs=1e-5)
        assert a["bbox"] == pytest.approx(b["bbox"], abs=1e-3)


def test_a_ddp_checkpoint_resumes_in_one_process(ddp_run, smoke_train, tmp_path):
    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    for name in ("checkpoint.pt", "log.jsonl"):
        (resumed_dir / name).write_bytes((ddp_run / name).read_bytes())
    images = training_images(smoke_train)
    resumed = train(build_model(smoke_train), images, train_config(epochs=2), resumed_dir, seed=0, device="cpu",
                    progress=False)
    uninterrupted = train(build_model(smoke_train), images, train_config(epochs=2), tmp_path / "straight",
                          seed=0, device="cpu", progress=False)
    assert load_checkpoint(resumed)["epoch"] == 2
    lines = [json.loads(line) for line in (resumed_dir / "log.jsonl").read_text().splitlines()]
    assert [line["iteration"] for line in lines] == list(range(1, 13))  # epoch 2 continued, epoch 1 not redone
    # After one epoch the two runs differ by ~1e-8 (float rounding). A second epoch can amplify that: a
    # proposal at the top-k or IoU boundary may flip, which moves weights by far more than rounding does,
    # yet far less than the epoch's own movement (about 0.25 here).
    resumed_state, straight_state = model_state(resumed), model_state(uninterrupted)
    assert_states_close(resumed_state, straight_state, tolerance=2e-3)
    moved = max((straight_state[k] - model_state(ddp_run / "checkpoint.pt")[k]).abs().max().item() for k in straight_state)
    assert moved > 0.05


def test_one_failing_rank_ends_the_whole_run(smoke_bench, tmp_path):
    started = time.perf_counter()
    finished = torchrun(str(WORKERS / "ddp_train.py"), str(smoke_bench.root), str(tmp_path), "--fail-at-step", "2",
                        timeout=240)
    assert finished.returncode != 0
    assert "rank 1 fails on purpose at step 2" in finished.stderr
    assert time.perf_counter() - started < 200
    # The epoch never finished: no checkpoint, so nothing half-trained can be mistaken for a result.
    assert not (tmp_path / "checkpoint.pt").exists()


def test_torchrun_acsl_eval_trains_and_scores_with_two_processes(tmp_path):
    finished = torchrun("-m", "acsl", "eval", "--profile", "smoke", "--run-store", str(tmp_path / "runs"),
                        "--data-root", str(tmp_path / "data"), "--device", "cpu", "--no-progress")
    assert finished.returncode == 0, finished.stderr[-4000:]
    metrics = json.loads(finished.stdout)  # printed once, by rank 0
    assert set(metrics) >= {"AP", "APr", "APc", "APf"}
    (run_dir,) = (tmp_path / "runs").glob("*_stage1_*")  # beside it, the pretrained start it fine-tunes
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["metrics"] == metrics and record["num_detections"] > 0
    # the pretrained start trains data parallel; the fine-tune of its RoI heads on the start's cached maps and
    # proposals runs on rank 0 alone (seconds of work), like the fast stage 2, while the other rank waits
    (start_dir,) = (tmp_path / "runs").glob("*_stage0_*")
    assert load_checkpoint(start_dir / "checkpoint.pt")["world_size"] == 2
    assert load_checkpoint(run_dir / "checkpoint.pt")["world_size"] == 1


def test_eqlv2_statistics_are_all_reduced_and_identical_on_both_ranks(tmp_path):
    sys.path.insert(0, str(WORKERS))
    from eqlv2_sync import C, batch

    from acsl.losses import build_loss

    out = tmp_path / "states.json"
    finished = torchrun(str(WORKERS / "eqlv2_sync.py"), str(out))
    assert finished.returncode == 0, finished.stderr[-4000:]
    rank0, rank1 = json.loads(out.read_text())
    assert rank0 == rank1
    # ... and equal to one process fed both ranks' batches together at each step.
    single = build_loss("eqlv2", C)
    for step in range(3):
        (l0, y0), (l1, y1) = batch(0, step), batch(1, step)
        # Each rank divides by its own 16 RoIs; the statistics are sums of |p − y|·w, so concatenating is exact.
        single(torch.cat([l0, l1]).requires_grad_(True), torch.cat([y0, y1]))
    assert rank0["pos"] == pytest.approx(single.pos_grad.tolist()) and rank0["neg"] == pytest.approx(single.neg_grad.tolist())
    assert sum(rank0["pos"]) > 0


def test_efl_statistics_on_two_processes_equal_one_process_with_the_same_total_batch(tmp_path):
    from efl_sync import C, batch

    from acsl.losses.efl import EqualizedFocalLoss

    out = tmp_path / "efl.json"
    finished = torchrun(str(WORKERS / "efl_sync.py"), str(out))
    assert finished.returncode == 0, finished.stderr[-4000:]
    rank0, rank1 = json.loads(out.read_text())
    assert rank0 == rank1
    single = EqualizedFocalLoss(C)
    for step in range(3):
        (l0, y0), (l1, y1) = batch(0, step), batch(1, step)
        labels = torch.cat([y0, y1])
        single(torch.cat([l0, l1]).requires_grad_(True), labels, (labels > 0).sum().double()).backward()
    # each rank's loss is its half over half the positives: its gradients are twice the single process's, and
    # so are the summed accumulators; their ratio g, what EFL uses, is the same
    assert rank0["pos"] == pytest.approx((2 * single.pos_grad).tolist())
    assert rank0["neg"] == pytest.approx((2 * single.neg_grad).tolist())
    assert rank0["g"] == pytest.approx(single.pos_neg.tolist())
    assert 0 < min(rank0["g"]) and max(rank0["g"]) < 1
