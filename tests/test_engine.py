"""The training loop: atomic per-epoch checkpoints, resume equal to an uninterrupted run, stage 2
training only the classifier's final linear layer."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from acsl.engine import load_checkpoint, load_stage1_weights, train
from acsl.losses import build_loss
from acsl.models import build_detector
from acsl.profiles import get_profile

SMOKE = get_profile("smoke")


def _model(dataset, loss_name="softmax_ce", **options):
    torch.manual_seed(0)
    loss = build_loss(loss_name, dataset.num_classes, dataset.frequencies, **options)
    return build_detector(SMOKE.detector, dataset.num_classes, loss)


class Interrupt(Exception):
    pass


def _interrupt_at(iteration):
    def hook(step):
        if step == iteration:
            raise Interrupt
    return hook


@pytest.mark.parametrize("stage", [1, 2])
def test_resume_after_an_interruption_equals_an_uninterrupted_run(smoke_train, tmp_path, stage):
    config = replace(SMOKE.stage1, epochs=2)
    if stage == 2:
        train(_model(smoke_train), smoke_train, replace(config, epochs=1), tmp_path / "parent", progress=False)

    def fresh():
        model = _model(smoke_train, "acsl", xi=0.5, seed=3) if stage == 2 else _model(smoke_train)
        if stage == 2:
            load_stage1_weights(model, tmp_path / "parent" / "checkpoint.pt")
        return model

    full = train(fresh(), smoke_train, config, tmp_path / "full", stage=stage, seed=1, progress=False)
    iters_per_epoch = -(-len(smoke_train) // config.batch_size)
    with pytest.raises(Interrupt):  # dies in the middle of the second epoch
        train(fresh(), smoke_train, config, tmp_path / "cut", stage=stage, seed=1, progress=False,
              on_step=_interrupt_at(iters_per_epoch + 2))
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["epoch"] == 1
    resumed = train(fresh(), smoke_train, config, tmp_path / "cut", stage=stage, seed=1, progress=False)

    a, b = load_checkpoint(full)["model"], load_checkpoint(resumed)["model"]
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    log_full = [json.loads(l) for l in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    log_cut = [json.loads(l) for l in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in log_full] == [r["loss"] for r in log_cut]


def test_stage2_trains_only_the_classifier(smoke_train, tmp_path):
    parent = train(_model(smoke_train), smoke_train, replace(SMOKE.stage1, epochs=1), tmp_path / "s1", progress=False)
    model = _model(smoke_train, "acsl", xi=0.7)
    load_stage1_weights(model, parent)
    before = {k: v.clone() for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
    train(model, smoke_train, SMOKE.stage2, tmp_path / "s2", stage=2, progress=False)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.cls_score.bias"}


def test_no_half_written_checkpoint_is_left_behind(smoke_train, tmp_path):
    train(_model(smoke_train), smoke_train, replace(SMOKE.stage1, epochs=1), tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "log.jsonl"]


def test_stage1_checkpoint_that_does_not_fit_is_refused(smoke_train, tmp_path):
    path = train(_model(smoke_train), smoke_train, replace(SMOKE.stage1, epochs=1), tmp_path, progress=False)
    other = build_detector(replace(SMOKE.detector, representation_size=128), smoke_train.num_classes,
                           build_loss("bce", smoke_train.num_classes))
    with pytest.raises(RuntimeError, match="does not fit this detector"):
        load_stage1_weights(other, path)


def test_unreadable_checkpoint_is_named(tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="cannot read checkpoint .*checkpoint.pt"):
        load_checkpoint(bad)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def test_channels_last_trains_like_the_default_layout(smoke_train, tmp_path):
    config = replace(SMOKE.stage1, epochs=1)
    default = train(_model(smoke_train), smoke_train, config, tmp_path / "nchw", device="cpu", progress=False)
    nhwc = train(_model(smoke_train), smoke_train, config, tmp_path / "nhwc", device="cpu", channels_last=True,
                 progress=False)
    a, b = load_checkpoint(default)["model"], load_checkpoint(nhwc)["model"]
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a if torch.is_tensor(a[k]))
    assert worst < 1e-3  # the same computation in another memory layout: equal up to float rounding
