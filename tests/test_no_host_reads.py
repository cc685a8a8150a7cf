"""No loss reads a value back to the host off the CPU (issue "No silent wrong numbers", item 9): on a GPU every
such read waits for the device, every step. Each loss's device path is run here on the CPU
(``ClassificationLoss.device_path_on_cpu``) under a dispatch mode that refuses the operations that read values
back (``.item()``/``bool()``/``int()``, ``nonzero``, boolean-mask indexing, ``unique``), forward, backward and
test-time scores; and the draws it makes instead (``acsl.losses.draws``) are checked for their counts and
distributions. On a CUDA machine the same losses also run under ``torch.cuda.set_sync_debug_mode("error")``."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from acsl.losses import LOSSES, build_loss
from acsl.losses.base import ClassificationLoss
from acsl.losses.draws import floor_fraction, uniform_subset, weighted_subset

aten = torch.ops.aten
#: Operations whose result needs a value from the device (a scalar read, or an output size that depends on data).
READS_BACK = {aten._local_scalar_dense.default, aten.nonzero.default, aten.masked_select.default,
              aten._unique2.default, aten.unique_dim.default, aten.unique_consecutive.default,
              aten.repeat_interleave.Tensor, aten.item.default}
C = 7
FREQUENCIES = ("r", "r", "c", "c", "f", "f", "f")


class NoHostReads(TorchDispatchMode):
    """Refuses ``READS_BACK`` and indexing with a boolean mask (whose result's size is data)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in READS_BACK:
            raise AssertionError(f"reads a value back to the host: {func}")
        if func in (aten.index.Tensor, aten.index_put.default, aten.index_put_.default):
            indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
            if any(i is not None and i.dtype == torch.bool for i in indices):
                raise AssertionError(f"indexes with a boolean mask: {func}")
        return func(*args, **(kwargs or {}))


def _loss(name: str, **options) -> ClassificationLoss:
    counts = [1, 3, 20, 40, 300, 500, 900]
    defaults = {"acsl": {"xi": 0.7}, "eql": {"lambda_": 0.05}, "droploss": {"lambda_": 0.05}, "gol": {"lambda_": 0.05},
                "federated": {"num_sample_classes": 5}, "norcal": {"gamma": 0.5}}
    loss = build_loss(name, C, FREQUENCIES, class_image_counts=counts, class_instance_counts=counts, num_images=1000,
                      **{**defaults.get(name, {}), **options})
    for module in loss.modules():
        if isinstance(module, ClassificationLoss):
            module.device_path_on_cpu = True
    return loss


def _batch(loss: ClassificationLoss, n: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, loss.num_logits, generator=g) * 2).requires_grad_(True)
    labels = torch.where(torch.rand(n, generator=g) < 0.7, 0, torch.randint(1, C + 1, (n,), generator=g))
    return logits, labels


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_no_loss_reads_a_value_back_on_its_device_path(name):
    loss = _loss(name)
    logits, labels = _batch(loss)
    with NoHostReads():
        for _ in range(2):  # losses with statistics (EQLv2, Seesaw) use them from the second step on
            value = loss(logits, labels)
            value.backward()
            loss.scores(logits.detach())
    assert torch.isfinite(value) and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("name, options", [(n, {}) for n in ("bce", "class_balanced", "ecm", "eql", "eqlv2", "focal", "ldam",
                                                             "norcal", "seesaw", "softmax_ce")]
                         + [("acsl", {"statistic_free": True}), ("seesaw", {"objectness": False})])
def test_the_device_path_of_a_loss_without_draws_gives_the_host_paths_value_and_gradient(name, options):
    device = _loss(name, **options)
    host = _loss(name, **options)
    for module in host.modules():
        if isinstance(module, ClassificationLoss):
            module.device_path_on_cpu = False
    for step in range(2):  # statistics carried from step to step (EQLv2, Seesaw)
        logits, labels = _batch(device, seed=step)
        twin = logits.detach().clone().requires_grad_(True)
        value, expected = device(logits, labels), host(twin, labels)
        torch.testing.assert_close(value, expected)
        value.backward()
        expected.backward()
        torch.testing.assert_close(logits.grad, twin.grad)


def test_the_dispatch_mode_catches_what_it_should():
    x = torch.tensor([0.0, 1.0, 2.0])
    with NoHostReads():
        for read in (lambda: bool(x.sum() > 0), lambda: x.nonzero(), lambda: x[x > 0], lambda: int(x.sum()),
                     lambda: x.unique()):
            with pytest.raises(AssertionError, match="host|boolean"):
                read()


def test_uniform_subset_draws_exactly_the_count_uniformly():
    candidates = torch.zeros(50, dtype=torch.bool)
    candidates[10:40] = True
    g = torch.Generator().manual_seed(0)
    hits = torch.zeros(50)
    for _ in range(3000):
        drawn = uniform_subset(candidates, torch.tensor(3), g)
        assert int(drawn.sum()) == 3 and not (drawn & ~candidates).any()
        hits += drawn
    share = hits[10:40] / 3000
    assert share.min() > 0.06 and share.max() < 0.14  # each of 30 candidates: 3/30 = 0.1
    assert int(uniform_subset(candidates, torch.tensor(99), g).sum()) == 30  # no more than there are
    assert floor_fraction(0.1, torch.tensor(30)).item() == 3 and floor_fraction(0.01, torch.tensor(299)).item() == 2


def test_weighted_subset_draws_without_replacement_in_proportion_to_the_weights():
    weights = torch.tensor([0.0, 1.0, 2.0, 7.0, 0.0])
    g = torch.Generator().manual_seed(1)
    first = torch.zeros(5)
    for _ in range(4000):
        drawn = weighted_subset(weights, torch.tensor(1), g)
        assert int(drawn.sum()) == 1 and not drawn[[0, 4]].any()
        first += drawn
    assert (first / 4000)[1:4].tolist() == pytest.approx([0.1, 0.2, 0.7], abs=0.03)
    assert weighted_subset(weights, torch.tensor(10), g).tolist() == [False, True, True, True, False]


def test_acsl_device_schedule_keeps_exactly_its_shares_of_background_rois():
    loss = _loss("acsl", xi=1.0)  # ξ = 1: only the ground-truth column and the schedule are kept
    labels = torch.zeros(300, dtype=torch.long)
    labels[:20] = 5
    mask = loss.weight_mask(torch.zeros(300, C + 1), labels)
    background = mask[20:]
    assert background[:, 5:].all()  # every background RoI suppresses the frequent classes
    assert int(background[:, 3].sum()) == 28 and (background[:, 3] == background[:, 4]).all()  # floor(10 % of 280)
    assert int(background[:, 1].sum()) == 2 and (background[:, 1] == background[:, 2]).all()  # floor(1 % of 280)
    assert mask[:20].sum(1).eq(1).all() and mask[:20, 5].all()  # foreground: its own column only at ξ = 1
    host = build_loss("acsl", C, FREQUENCIES, xi=1.0).weight_mask(torch.zeros(300, C + 1), labels)
    assert host.sum(0).tolist() == mask.sum(0).tolist()  # other RoIs, the same counts as the host draws


def test_bags_and_federated_device_paths_equal_the_host_paths_when_nothing_is_left_to_chance():
    logits, labels = _batch(_loss("bags"), n=40)
    device, host = _loss("bags", others_ratio=1000.0), build_loss(
        "bags", C, FREQUENCIES, class_instance_counts=[1, 3, 20, 40, 300, 500, 900], others_ratio=1000.0)
    torch.testing.assert_close(device(logits, labels), host(logits, labels))  # every other RoI takes part
    device = _loss("federated", num_sample_classes=C + 1)
    host = build_loss("federated", C, FREQUENCIES, class_image_counts=[1, 3, 20, 40, 300, 500, 900],
                      num_images=1000, num_sample_classes=C + 1)
    assert torch.equal(device.sampled_columns(labels), host.sampled_columns(labels))  # every class trained
    few = _loss("federated", num_sample_classes=4)
    only_background = torch.zeros(10, dtype=torch.long)
    assert int(few.sampled_columns(only_background).sum()) == 3  # the background takes one of the 4 slots


def test_a_device_generator_resumes_from_the_saved_state():
    loss = _loss("acsl")
    labels = torch.zeros(200, dtype=torch.long)
    loss.weight_mask(torch.zeros(200, C + 1), labels)
    state = loss.state_dict()
    expected = loss.weight_mask(torch.zeros(200, C + 1), labels)
    resumed = _loss("acsl")
    resumed.load_state_dict(state)
    assert torch.equal(resumed.weight_mask(torch.zeros(200, C + 1), labels), expected)
    # a device generator's state, loaded and saved again before it is used, is kept
    state = {"generator_state": torch.Generator().get_state(), "device_generator_state": torch.Generator().get_state()}
    loaded = _loss("acsl")
    loaded.set_extra_state(state)
    assert torch.equal(loaded.get_extra_state()["device_generator_state"], state["device_generator_state"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_no_loss_synchronises_on_cuda(name):
    loss = build_loss(name, C, FREQUENCIES, class_image_counts=[1, 3, 20, 40, 300, 500, 900],
                      class_instance_counts=[1, 3, 20, 40, 300, 500, 900], num_images=1000).cuda()
    logits, labels = _batch(loss)
    logits, labels = logits.detach().cuda().requires_grad_(True), labels.cuda()
    loss(logits, labels)  # first use: the device generator is created (one host step)
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss(logits, labels).backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
