"""The losses that came after ACSL (DropLoss, GOL, ECM, NorCal) against hand-worked numbers from their authors'
formulas: value and gradient on small batches, the background column, the initial classifier, the draws."""

from __future__ import annotations

import math

import pytest
import torch

from acsl.losses import LOSSES, build_loss
from acsl.models import build_detector
from acsl.profiles import get_profile

C = 3
FREQUENCIES = ("r", "c", "f")


def _build(name: str, image_counts=(1, 40, 900), instance_counts=(1, 9, 2000), num_images=1000, **options):
    return build_loss(name, C, FREQUENCIES, class_image_counts=image_counts, class_instance_counts=instance_counts,
                      num_images=num_images, **options)


def _value_and_grad(loss, z: list[list[float]], labels: list[int]) -> tuple[float, torch.Tensor]:
    logits = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    value = loss(logits, torch.tensor(labels))
    value.backward()
    return value.item(), logits.grad


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# ------------------------------------------------------------------------------------------ DropLoss

def test_droploss_foreground_rows_drop_rare_negatives_and_background_rows_keep_them_when_every_foreground_is_rare():
    loss = _build("droploss", lambda_=0.01)  # rare: f < 0.01, class 1 only (1 image of 1000)
    z = [[0.0, 0.5, -1.0, 2.0], [0.0, 1.0, 0.0, -0.5], [0.0, -0.3, 0.2, 0.1]]
    labels = [2, 1, 0]  # a common RoI, a rare one, a background one: half the foreground is rare, r = 0.5
    # every rare column of the background row is kept or dropped at random; fix the draw through the seed
    value, grad = _value_and_grad(loss, z, labels)
    again, _ = _value_and_grad(_build("droploss", lambda_=0.01), z, labels)
    assert value == again  # the module's own seeded generator
    # Hand-worked with the background row's rare column dropped or kept: the two possible values
    def bce(x, y):
        return -(y * math.log(_sigmoid(x)) + (1 - y) * math.log(1 - _sigmoid(x)))
    row0 = bce(-1.0, 1) + bce(2.0, 0)  # class 2 RoI: the rare column 1 dropped (EQL's exclusion)
    row1 = bce(1.0, 1) + bce(0.0, 0) + bce(-0.5, 0)  # the rare RoI keeps its own column
    row2_kept = bce(-0.3, 0) + bce(0.2, 0) + bce(0.1, 0)
    row2_dropped = bce(0.2, 0) + bce(0.1, 0)
    assert value in (pytest.approx((row0 + row1 + row2_kept) / 3), pytest.approx((row0 + row1 + row2_dropped) / 3))
    assert grad[0, 1] == 0 and grad[:, 0].abs().sum() == 0  # dropped column, and no background classifier
    assert grad[0, 2].item() == pytest.approx((_sigmoid(-1.0) - 1) / 3)  # w (p − y) / N


def test_droploss_background_keeps_rare_columns_at_the_batchs_rare_share():
    loss = _build("droploss", lambda_=0.01, seed=3)
    n = 20_000
    labels = torch.zeros(n, dtype=torch.long)
    labels[:4] = torch.tensor([1, 2, 3, 3])  # r = 1/4
    weights = loss.weights(labels, torch.float64)
    kept = weights[4:, 1].mean().item()
    assert kept == pytest.approx(0.25, abs=0.01)
    assert (weights[4:, 2:] == 1).all()  # common and frequent columns are never dropped
    only_frequent = torch.tensor([3, 0, 0, 0])
    assert (loss.weights(only_frequent, torch.float64)[1:, 1] == 0).all()  # r = 0: every rare column dropped
    no_foreground = torch.zeros(5, dtype=torch.long)
    assert (loss.weights(no_foreground, torch.float64)[:, 1:] == 1).all()  # r undefined: nothing dropped


# ----------------------------------------------------------------------------------------------- GOL

def test_gumbel_activation_value_and_gradient_by_hand():
    loss = _build("gol", droploss=False)
    # one foreground RoI of class 1 at z = 0 everywhere: p = e^-1 on each column
    value, grad = _value_and_grad(loss, [[0.0, 0.0, 0.0, 0.0]], [1])
    p = math.exp(-1)
    assert value == pytest.approx(1.0 + 3 * -math.log(1 - p))  # −log p = e^0 = 1 on the positive column
    assert grad[0, 1].item() == pytest.approx(-1.0)  # d(e^-z)/dz at 0
    assert grad[0, 2].item() == pytest.approx(p / (1 - p))  # d(−log(1 − p))/dz = p e^-z / (1 − p)


def test_gumbel_clamps_logits_and_the_reduced_loss_and_handles_the_background_column():
    plain = _build("gol", droploss=False)
    _, grad = _value_and_grad(plain, [[11.0, -5.0, 0.0, 0.0]], [0])
    assert grad[0, 0] == 0 and grad[0, 1] == 0  # outside [−4, 10]: no gradient
    value, grad = _value_and_grad(plain, [[-4.0, 9.0, 9.0, 9.0]], [0])  # background positive on column 0
    assert value == 20.0 and grad.abs().sum() == 0  # the reduced loss is clamped at 20
    with_drop = _build("gol", lambda_=0.0)  # nothing is tail: plain Gumbel BCE over the C classes
    value, grad = _value_and_grad(with_drop, [[3.0, 0.0, 0.0, 0.0]], [0])
    assert value == pytest.approx(3 * -math.log(1 - math.exp(-1)))  # a background RoI is 0 on every class
    assert grad[0, 0] == 0  # no background classifier
    scores = with_drop.scores(torch.tensor([[0.0, 1.0, -20.0, 20.0]]))
    assert torch.allclose(scores, torch.exp(-torch.exp(-torch.tensor([[0.0, 1.0, -20.0, 20.0]]))))  # unclamped


def test_gol_starts_its_classifier_at_weight_0001_and_bias_minus_2():
    model = build_detector(get_profile("smoke").detector, C, _build("gol"))
    classifier = model.roi_heads.box_predictor.cls_score
    assert (classifier.weight == 0.001).all() and (classifier.bias == -2).all()


# ----------------------------------------------------------------------------------------------- ECM

def test_ecm_value_and_gradient_by_hand():
    loss = _build("ecm")
    n = [1, 9, 2000]
    s = sum(n)
    positives = [s * 6.3313, *n]
    total = sum(positives)
    z = [[0.2, -0.1, 0.3, 0.0], [1.0, -2.0, 0.5, 0.1]]
    labels = [2, 0]
    expected, expected_grad = 0.0, torch.zeros(2, 4, dtype=torch.float64)
    for i, row in enumerate(z):
        for j, x in enumerate(row):
            negatives = total - positives[j]
            delta = 0.25 * math.log(positives[j] / negatives)
            a = negatives / positives[j]
            w = a * math.log((1 + a) / a)
            p = _sigmoid(2 * x + delta)
            y = 1.0 if j == labels[i] else 0.0
            expected += -w * (y * math.log(p) + (1 - y) * math.log(1 - p)) / 2
            expected_grad[i, j] = 2 * w * (p - y) / 2
    value, grad = _value_and_grad(loss, z, labels)
    assert value == pytest.approx(expected, rel=1e-6)
    assert torch.allclose(grad, expected_grad, rtol=1e-5, atol=1e-8)
    assert loss.column_weights[0].item() == pytest.approx(0.3147, abs=1e-4)  # the background's, at ρ = 6.3313


def test_ecm_scores_its_cosine_classifier_and_background_as_its_authors():
    loss = _build("ecm")
    z = torch.tensor([[0.5, 1.0, -1.0, 0.0]])
    p = torch.sigmoid(z)
    assert torch.allclose(loss.scores(z)[:, 1:], p[:, 1:] * (1 - p[:, :1]))  # no margin, no factor 2 at test time
    assert loss.classifier_spec.kind == "cosine" and loss.classifier_spec.temperature == 20
    model = build_detector(get_profile("smoke").detector, C, loss)
    classifier = model.roi_heads.box_predictor.cls_score
    assert type(classifier).__name__ == "CosineClassifier" and (classifier.bias == 0).all()


# -------------------------------------------------------------------------------------------- NorCal

def test_norcal_divides_the_softmax_by_the_image_count_to_the_gamma_and_renormalises_with_the_background():
    gamma = 0.7
    loss = _build("norcal", gamma=gamma)
    z = [0.3, 1.2, -0.4, 2.0]
    counts = [1, 40, 900]
    adjusted = [math.exp(z[0])] + [math.exp(z[c + 1]) / counts[c] ** gamma for c in range(C)]
    expected = [v / sum(adjusted) for v in adjusted]
    assert loss.scores(torch.tensor([z], dtype=torch.float64))[0].tolist() == pytest.approx(expected)
    assert torch.allclose(_build("norcal").scores(torch.tensor([z])), torch.softmax(torch.tensor([z]), dim=1))  # γ = 0
    # training is the base loss's, value and gradient
    value, grad = _value_and_grad(loss, [z, z], [2, 0])
    base_value, base_grad = _value_and_grad(_build("softmax_ce"), [z, z], [2, 0])
    assert value == base_value and torch.equal(grad, base_grad)


def test_norcal_on_a_sigmoid_base_divides_the_odds_and_refuses_other_layouts():
    loss = _build("norcal", base="bce", gamma=0.5)
    z = torch.tensor([[0.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    expected = torch.sigmoid(z - torch.tensor([0.0, 0.0, 0.5 * math.log(40), 0.5 * math.log(900)], dtype=torch.float64))
    assert torch.allclose(loss.scores(z), expected)
    assert loss.use_sigmoid and loss.initial_bias() is not None
    with pytest.raises(ValueError, match="plain layout"):
        _build("norcal", base="seesaw")
    with pytest.raises(ValueError, match="base must name another registered loss"):
        _build("norcal", base="norcal")
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        _build("norcal", gamma=-1.0)


def test_norcal_loads_the_state_of_a_detector_trained_with_its_base_loss():
    """The run store evaluates the base loss's checkpoint with NorCal's scores (``ExperimentSpec.trained_as``):
    the base loss's state (EQLv2's gradient statistics) moves under NorCal's ``base``."""
    trained, calibrated = torch.nn.Module(), torch.nn.Module()
    trained.loss, calibrated.loss = _build("eqlv2"), _build("norcal", base="eqlv2", gamma=0.5)
    trained.loss.pos_grad.fill_(3.0)
    calibrated.load_state_dict(trained.state_dict())  # strict: every key placed
    assert torch.equal(calibrated.loss.base.pos_grad, trained.loss.pos_grad)
    calibrated.load_state_dict(calibrated.state_dict())  # its own state loads as before
    assert LOSSES["norcal"].trained_as({"gamma": 0.5}) == ("softmax_ce", {})
    assert LOSSES["norcal"].trained_as({"base": "eqlv2"}) == ("eqlv2", {}) and LOSSES["eqlv2"].trained_as({}) is None


def test_the_new_losses_are_registered_and_train_a_detector_step():
    from conftest import train_steps

    for name in ("droploss", "ecm", "gol", "norcal"):
        assert name in LOSSES
    torch.manual_seed(0)
    images = [torch.rand(3, 64, 64) for _ in range(2)]
    targets = [{"boxes": torch.tensor([[4.0, 4.0, 40.0, 40.0]]), "labels": torch.tensor([1 + k])} for k in range(2)]
    for name in ("droploss", "ecm", "gol", "norcal"):
        model = build_detector(get_profile("smoke").detector, C, _build(name))
        losses = train_steps(model, images, targets, steps=2)
        assert all(math.isfinite(v) for v in losses), name


def test_the_new_losses_take_typed_options_in_specs_and_train_from_the_cli(smoke_bench, tmp_path, capsys):
    import json

    from acsl.cli.main import main
    from acsl.runs import ExperimentSpec, decoupled_spec

    spec = decoupled_spec("smoke", "norcal", gamma="0.5", base="bce")  # a command line's strings, typed
    assert dict(spec.loss_options) == {"base": "bce", "gamma": 0.5}
    assert ExperimentSpec("smoke", "gol", (("droploss", "false"),)).loss_options == (("droploss", False),)
    with pytest.raises(ValueError, match="loss 'ecm' option fg_bg_ratio"):
        ExperimentSpec("smoke", "ecm", (("fg_bg_ratio", "many"),))
    command = ["eval", "--profile", "smoke", "--loss", "ecm", "--max-iters", "2", "--subset", "8",
               "--run-store", str(tmp_path / "runs"), "--data-root", str(smoke_bench.root.parent), "--no-progress"]
    assert main(command) == 0
    assert "AP" in json.loads(capsys.readouterr().out)
    (run,) = (tmp_path / "runs").glob("smoke_stage1_ecm_*")
    assert (run / "metrics.json").is_file()
