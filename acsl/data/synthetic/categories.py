"""The synthetic categories: identities (shape x colour x marking), look-alike pairs and targets.

Category identity = shape x colour x marking. About ``lookalike_fraction`` of the rare-curve categories
copy the shape and colour of a frequent-curve category whose marking is ``plain`` and add only a small
central dot or a thin border (the paper's "sunglasses" vs "eye mask"); apart from look-alike
pairs, categories have distinct (shape, colour) pairs as long as ``num_categories - n_lookalikes <= 80``
(docs/ARCHITECTURE.md, "The synthetic benchmark").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from acsl.config import MAX_CATEGORIES, SyntheticConfig

from .curve import FREQUENT_TARGET_MIN, RARE_TARGET_MAX, curve_quantiles, instance_means, train_targets, val_targets

__all__ = ["SHAPES", "COLOURS", "MARKINGS", "design_categories"]

SHAPES: tuple[str, ...] = (
    "circle", "square", "triangle", "diamond", "hexagon", "cross", "ring", "star",
)
#: Well separated, saturated (or extreme black/white) class colours; backgrounds avoid them.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 30, 30),
    "green": (30, 185, 45),
    "blue": (35, 70, 230),
    "yellow": (245, 225, 25),
    "magenta": (230, 40, 210),
    "cyan": (25, 215, 225),
    "orange": (255, 135, 15),
    "purple": (125, 40, 190),
    "white": (248, 248, 248),
    "black": (12, 12, 12),
}
#: "dotted" (small central dot) and "bordered" (thin outline) are the look-alike details.
MARKINGS: tuple[str, ...] = ("plain", "striped", "dotted", "bordered")

assert MAX_CATEGORIES == len(SHAPES) * len(COLOURS) * len(MARKINGS), "config.MAX_CATEGORIES is the number of shape x colour x marking identities"

Identity = tuple[str, str, str]  # (shape, colour, marking)


def _lookalike_pairs(config: SyntheticConfig, train_t: np.ndarray, rng: np.random.Generator) -> dict[int, int]:
    """Look-alike child curve position -> its parent's: rare-curve children (sorted) paired with
    frequent-curve parents (in drawing order). A pair reserves its (shape, colour): 2 of its 4
    identities stay unused, so at most ``(MAX_CATEGORIES - C) // 2`` pairs."""
    C = config.num_categories
    rare = [i for i in range(C) if train_t[i] <= RARE_TARGET_MAX]
    frequent = [i for i in range(C) if train_t[i] >= FREQUENT_TARGET_MIN]
    if not frequent:  # tiny configs: the top quarter of the curve plays the frequent role
        frequent = list(range(C - max(1, C // 4), C))
    frequent = [i for i in frequent if i not in rare]
    n_look = min(int(round(config.lookalike_fraction * len(rare))), len(frequent),
                 (MAX_CATEGORIES - C) // 2)
    children = sorted(rng.choice(rare, size=n_look, replace=False).tolist()) if n_look else []
    parents = rng.choice(frequent, size=n_look, replace=False).tolist() if n_look else []
    return dict(zip(children, parents))


def _identities(C: int, parent_of: dict[int, int], rng: np.random.Generator) -> dict[int, Identity]:
    """(shape, colour, marking) per curve position: parents first (a plain (shape, colour) pair of
    their own), then the others; children copy their parent's pair with a dot or a border; beyond the
    80 pairs, distinct unused triples."""
    children, parents = list(parent_of), list(parent_of.values())
    pairs = [(s, c) for s in SHAPES for c in COLOURS]
    pairs = [pairs[k] for k in rng.permutation(len(pairs))]
    identity: dict[int, Identity] = {}
    used: set[Identity] = set()
    reserved_pairs: set[tuple[str, str]] = set()
    own = parents + [i for i in range(C) if i not in parent_of and i not in parents]
    for k, i in enumerate(own[: len(pairs)]):
        shape, colour = pairs[k]
        marking = "plain" if i in parents else MARKINGS[int(rng.integers(len(MARKINGS)))]
        identity[i] = (shape, colour, marking)
        used.add(identity[i])
        if i in parents:
            reserved_pairs.add((shape, colour))
    for i in children:
        shape, colour, _ = identity[parent_of[i]]
        identity[i] = (shape, colour, ("dotted", "bordered")[int(rng.integers(2))])
        used.add(identity[i])
    overflow = own[len(pairs):]
    if overflow:  # more categories than (shape, colour) pairs: distinct markings
        triples = [
            (s, c, m) for s in SHAPES for c in COLOURS for m in MARKINGS
            if (s, c, m) not in used and (s, c) not in reserved_pairs
        ]
        triples = [triples[k] for k in rng.permutation(len(triples))]
        for i, t in zip(overflow, triples):
            identity[i] = t
    return identity


def design_categories(config: SyntheticConfig, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Category specs (identity, curve source, targets, look-alike parent), sorted by id."""
    C = config.num_categories
    names, counts = curve_quantiles(C, config.curve)
    train_t = train_targets(config, counts)
    val_t = val_targets(config, train_t)
    means = instance_means(config, counts, train_t)
    parent_of = _lookalike_pairs(config, train_t, rng)
    identity = _identities(C, parent_of, rng)

    ids = rng.permutation(C) + 1  # ids do not encode frequency (as in LVIS)
    specs = []
    for i in range(C):
        shape, colour, marking = identity[i]
        name = f"{colour}_{shape}_{marking}"
        specs.append({
            "pos": i,
            "id": int(ids[i]),
            "name": name,
            "shape": shape,
            "color": colour,
            "marking": marking,
            "lvis_curve_source": names[i],
            "lvis_curve_image_count": int(counts[i]),
            "train_target": int(train_t[i]),
            "val_target": int(val_t[i]),
            "instances_per_image": float(means[i]),
            "parent_pos": parent_of.get(i),
        })
    pos_to_id = {s["pos"]: s["id"] for s in specs}
    for s in specs:
        s["lookalike_of"] = pos_to_id[s["parent_pos"]] if s["parent_pos"] is not None else None
    return sorted(specs, key=lambda s: s["id"])
