"""Anchor/RoI sampling keyed by image: the same image gets the same sample wherever it sits in a batch
and whatever the global random state, with torchvision's counts."""

from __future__ import annotations

import torch
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler

from acsl.models.sampling import KeyedBalancedSampler, mix_seed


def _matched(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-1, 4, (n,), generator=g)  # -1 ignored, 0 background, >0 positive


def test_an_images_sample_depends_on_its_key_only():
    sampler = KeyedBalancedSampler(64, 0.25, salt=2)
    a, b, c = _matched(500, 1), _matched(400, 2), _matched(300, 3)
    sampler.image_keys = [11, 22, 33]
    torch.manual_seed(0)
    pos1, neg1 = sampler([a, b, c])
    sampler.image_keys = [33, 11]
    torch.manual_seed(123)  # another global state: must not matter
    pos2, neg2 = sampler([c, a])
    assert torch.equal(pos1[0], pos2[1]) and torch.equal(neg1[0], neg2[1])
    assert torch.equal(pos1[2], pos2[0]) and torch.equal(neg1[2], neg2[0])
    # Another key draws another sample; another salt (the RPN's) too.
    sampler.image_keys = [12]
    assert not torch.equal(sampler([a])[1][0], neg1[0])
    other = KeyedBalancedSampler(64, 0.25, salt=1)
    other.image_keys = [11]
    assert not torch.equal(other([a])[1][0], neg1[0])


def test_counts_follow_torchvisions_rule():
    sampler = KeyedBalancedSampler(64, 0.25, salt=2)
    matched = _matched(500, 4)
    sampler.image_keys = [5]
    (pos,), (neg,) = sampler([matched])
    assert int(pos.sum()) == min(int((matched >= 1).sum()), 16)
    assert int(pos.sum()) + int(neg.sum()) == 64
    assert bool((matched[pos.bool()] >= 1).all()) and bool((matched[neg.bool()] == 0).all())
    few = torch.tensor([1, 0, 0, -1, 2])  # fewer candidates than the batch: all are taken
    sampler.image_keys = [6]
    (pos,), (neg,) = sampler([few])
    assert pos.tolist() == [1, 0, 0, 0, 1] and neg.tolist() == [0, 1, 1, 0, 0]


def test_without_keys_it_is_torchvisions_sampler():
    matched = [_matched(300, 7), _matched(200, 8)]
    torch.manual_seed(9)
    expected = BalancedPositiveNegativeSampler(32, 0.5)(matched)
    torch.manual_seed(9)
    got = KeyedBalancedSampler(32, 0.5, salt=1)(matched)
    for e, g in zip(expected, got):
        assert all(torch.equal(x, y) for x, y in zip(e, g))


def test_mix_seed_is_a_stable_63_bit_function_of_its_parts():
    assert mix_seed(0, 1, 2) == mix_seed(0, 1, 2)
    assert len({mix_seed(0, e, i) for e in range(20) for i in range(50)}) == 1000
    assert all(0 <= mix_seed(s, 3) < 2**63 for s in range(100))
