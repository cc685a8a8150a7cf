"""The embedded synthetic long-tail detection benchmark (DESIGN §7, the ``quick`` profile's data).

``generate_benchmark(root, SyntheticConfig(...))`` writes, deterministically from ``config.seed``,
an LVIS-format dataset::

    root/config.json                      the config and CONTENT_VERSION (marks a complete dataset)
    root/annotations/train.json           LVIS format (images, annotations, categories)
    root/annotations/val.json
    root/images/train/000001.png ...      image ``file_name`` is relative to its split's folder
    root/images/val/001201.png ...

How it follows DESIGN §7:

* **Long-tail curve.** The ``num_categories`` categories take the image counts of the real LVIS
  v0.5 train categories at evenly spaced quantiles of the sorted count curve
  (``data/stats/lvis_v0.5_train_categories.csv``), so the r/c/f shares follow LVIS (~37/37/26 %).
  Counts <= 100 are kept; the frequent range (100, max] is compressed log-linearly into
  (100, max_f] with ``max_f = 0.5 * num_train_images``, lowered further until the total fits
  ``MEAN_CATEGORIES_PER_IMAGE`` categories per train image (and scaled down proportionally, then
  clipped to the number of images, when even that does not fit: small configs such as ``smoke``).
* **Frequency by LVIS's rule.** Each category's ``frequency`` is computed from its *actual* number
  of train images (r <= 10, c 11–100, f > 100; :func:`acsl.data.stats.frequency_from_image_count`),
  and ``image_count`` / ``instance_count`` are the actual train counts. The val file carries the
  same category records (as LVIS's val file carries the train statistics).
* **Objects.** Category identity = shape x colour x marking (``SHAPES``, ``COLOURS``,
  ``MARKINGS``), drawn with flat, high-contrast colours on cluttered low-saturation backgrounds
  (noise, a gradient, thin lines and blobs). Sizes cover COCO's small (< 32²), medium and, when
  ``image_size`` allows, large (> 96²) areas. Boxes are the exact extent of the object's drawn
  pixels (tight); later (smaller) objects may overlap earlier ones by a bounded fraction.
* **Look-alikes.** About ``lookalike_fraction`` of the rare-curve categories copy the shape and
  colour of a frequent-curve category whose marking is ``plain`` and add only a small central dot
  or a thin border (the paper's "sunglasses" vs "eye mask"); the category records
  ``"lookalike_of": parent_id`` (``None`` otherwise). Apart from look-alike pairs, categories
  have distinct (shape, colour) pairs as long as ``num_categories - n_lookalikes <= 80``.
* **Federated fields.** ``neg_category_ids``: up to ``MAX_NEG_CATEGORIES`` categories truly absent
  from the image. ``not_exhaustive_category_ids``: on about ``NOT_EXHAUSTIVE_FRACTION`` of images
  one extra instance of a present category is drawn but deliberately not annotated, and that
  category is listed.
* **Val.** Every category appears in at least ``min(3, num_val_images)`` val images, with a flatter
  distribution (targets proportional to train target ** 0.25).
* **Annotations.** ``bbox`` = [x, y, w, h] in pixels (pixel-edge convention), ``area`` = w * h of the
  box, ``segmentation`` = the box as one polygon (the lvis API requires the key), ``iscrowd`` = 0.

Generation is atomic (written into a temporary sibling directory, then renamed) and idempotent
(an existing root with an equal config is returned untouched; a different config raises).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from acsl.data.stats import frequency_from_image_count, load_category_stats, load_openimages_stats

__all__ = [
    "CONTENT_VERSION",
    "SyntheticConfig",
    "SyntheticBenchmark",
    "SyntheticDatasetExistsError",
    "generate_benchmark",
    "SHAPES",
    "COLOURS",
    "MARKINGS",
]

CURVES = ("lvis_v0.5", "openimages")

#: Bumped whenever the generated content for a given config changes.
CONTENT_VERSION = "acsl-synthetic-1"

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

MAX_CATEGORIES = len(SHAPES) * len(COLOURS) * len(MARKINGS)
MEAN_CATEGORIES_PER_IMAGE = 3.5  # train budget used to scale the frequent range
MAX_CATEGORIES_PER_IMAGE = 5
VAL_MEAN_CATEGORIES_PER_IMAGE = 3.0
MIN_VAL_IMAGES_PER_CATEGORY = 3
MAX_NEG_CATEGORIES = 5
NOT_EXHAUSTIVE_FRACTION = 0.05
EXTRA_INSTANCE_PROB = 0.3  # chance that a present category gets 1-2 more instances
MIN_OBJECT_SIDE = 12
MAX_OCCLUSION = 0.3  # at most this fraction of an object's box may be covered by later objects
_RARE_TARGET_MAX = 10
_FREQUENT_TARGET_MIN = 101


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and seed of the synthetic benchmark (DESIGN §7). Defaults are the ``quick`` profile.

    num_categories: foreground categories C (2..320).
    num_train_images / num_val_images: images per split (>= 1).
    image_size: side of the square images in pixels (32..1024).
    seed: non-negative int; the whole dataset is a pure function of the config.
    max_objects_per_image: cap on drawn objects per image (annotated + unannotated, >= 1).
    lookalike_fraction: fraction (0..1) of rare-curve categories made look-alikes of a frequent one.
    curve: "lvis_v0.5" (default) or "openimages": whose sorted per-class counts the categories follow.
        The Open Images curve (its 500 challenge classes' box counts) is scaled as a whole to the image
        budget, keeping its shape: fewer classes with very few samples than LVIS (paper Figure 2).
    """

    num_categories: int = 60
    num_train_images: int = 1200
    num_val_images: int = 300
    image_size: int = 128
    seed: int = 0
    max_objects_per_image: int = 6
    lookalike_fraction: float = 0.2
    curve: str = "lvis_v0.5"

    def __post_init__(self) -> None:
        def check_int(field: str, lo: int, hi: int | None = None) -> None:
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"SyntheticConfig.{field} must be an int, got {v!r}")
            if v < lo or (hi is not None and v > hi):
                rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
                raise ValueError(f"SyntheticConfig.{field} must be {rng}, got {v}")

        check_int("num_categories", 2, MAX_CATEGORIES)
        check_int("num_train_images", 1)
        check_int("num_val_images", 1)
        check_int("image_size", 32, 1024)
        check_int("seed", 0)
        check_int("max_objects_per_image", 1, 50)
        f = self.lookalike_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 <= f <= 1.0:
            raise ValueError(f"SyntheticConfig.lookalike_fraction must be a float in [0, 1], got {f!r}")
        object.__setattr__(self, "lookalike_fraction", float(f))  # 1 and 1.0: same files
        if self.curve not in CURVES:
            raise ValueError(f"SyntheticConfig.curve must be one of {CURVES}, got {self.curve!r}")

    def record(self) -> dict[str, Any]:
        """The config as plain data; ``curve`` only when not the default, so every benchmark generated
        before the field existed keeps its config record (and every experiment its hash)."""
        record = dataclasses.asdict(self)
        if record["curve"] == "lvis_v0.5":
            del record["curve"]
        return record


@dataclass(frozen=True)
class SyntheticBenchmark:
    """Paths of a generated benchmark (image ``file_name``s are relative to the image folders)."""

    root: Path
    train_json: Path
    val_json: Path
    train_images: Path
    val_images: Path

    @classmethod
    def at(cls, root: str | Path) -> "SyntheticBenchmark":
        root = Path(root)
        return cls(
            root=root,
            train_json=root / "annotations" / "train.json",
            val_json=root / "annotations" / "val.json",
            train_images=root / "images" / "train",
            val_images=root / "images" / "val",
        )


class SyntheticDatasetExistsError(FileExistsError):
    """``root`` already holds something other than the requested benchmark."""


# --------------------------------------------------------------------------------------------
# category design: the LVIS curve, budget scaling, identities and look-alike pairs
# --------------------------------------------------------------------------------------------


def _curve_quantiles(num_categories: int, curve: str = "lvis_v0.5") -> tuple[list[str], np.ndarray]:
    """(name, count) at evenly spaced quantiles of the sorted count curve: LVIS v0.5's image counts, or
    Open Images' box counts (it publishes no per-class image counts)."""
    if curve == "openimages":
        stats = load_openimages_stats().sort_values(["instance_count", "name"], kind="stable")
        column = "instance_count"
    else:
        stats = load_category_stats("lvis_v0.5").sort_values(["image_count", "name"], kind="stable")
        column = "image_count"
    n = len(stats)
    idx = np.floor((np.arange(num_categories) + 0.5) * n / num_categories).astype(int)
    return list(stats["name"].to_numpy()[idx]), stats[column].to_numpy()[idx].astype(float)


def _compress(counts: np.ndarray, max_f: float, cmax: float) -> np.ndarray:
    """Keep counts <= 100; map (100, cmax] log-linearly and monotonically onto (100, max_f]."""
    out = counts.astype(float).copy()
    hi = counts > 100
    if hi.any() and cmax > 100:
        expo = np.log(counts[hi] / 100.0) / math.log(cmax / 100.0)
        out[hi] = np.maximum(_FREQUENT_TARGET_MIN, np.round(100.0 * (max_f / 100.0) ** expo))
    return np.round(out)


def _train_targets(config: SyntheticConfig, counts: np.ndarray) -> np.ndarray:
    """Target train image count per curve position (DESIGN §7: kept <= 100, compressed above; the Open
    Images curve: scaled as a whole into the budget)."""
    n = config.num_train_images
    cap = min(MAX_CATEGORIES_PER_IMAGE, config.max_objects_per_image)
    budget = n * min(MEAN_CATEGORIES_PER_IMAGE, 0.7 * cap)
    if config.curve == "openimages":
        # Keep the curve's shape on a log scale: its span max/min shrinks to what the budget can hold.
        logs = np.log(counts)
        span = min(1.0, math.log(max(2.0, 0.5 * n)) / max(logs.max() - logs.min(), 1e-9))
        targets = np.exp((logs - logs.min()) * span)
        targets = np.maximum(1.0, np.round(targets * budget / targets.sum()))
        return np.clip(targets, 1, max(1.0, 0.5 * n)).astype(int)
    cmax = float(counts.max())
    max_f = max(float(_FREQUENT_TARGET_MIN), 0.5 * n)
    targets = _compress(counts, max_f, cmax)
    if targets.sum() > budget and max_f > _FREQUENT_TARGET_MIN:
        lo, hi = float(_FREQUENT_TARGET_MIN), max_f  # largest max_f that fits the budget
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if _compress(counts, mid, cmax).sum() <= budget:
                lo = mid
            else:
                hi = mid
        targets = _compress(counts, lo, cmax)
    if targets.sum() > budget:  # small configs: shrink the whole curve proportionally
        targets = np.maximum(1.0, np.floor(targets * budget / targets.sum()))
    return np.clip(targets, 1, n).astype(int)


def _val_targets(config: SyntheticConfig, train_targets: np.ndarray) -> np.ndarray:
    """Flatter val targets: proportional to train_target ** 0.25, at least 3 images each."""
    n = config.num_val_images
    lo = min(MIN_VAL_IMAGES_PER_CATEGORY, n)
    w = train_targets.astype(float) ** 0.25
    v = np.round(w * (n * VAL_MEAN_CATEGORIES_PER_IMAGE) / w.sum())
    return np.clip(v, lo, n).astype(int)


def _design_categories(config: SyntheticConfig, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Category specs (identity, curve source, targets, look-alike parent), sorted by id."""
    C = config.num_categories
    names, counts = _curve_quantiles(C, config.curve)
    train_t = _train_targets(config, counts)
    val_t = _val_targets(config, train_t)

    rare = [i for i in range(C) if train_t[i] <= _RARE_TARGET_MAX]
    frequent = [i for i in range(C) if train_t[i] >= _FREQUENT_TARGET_MIN]
    if not frequent:  # tiny configs: the top quarter of the curve plays the frequent role
        frequent = list(range(C - max(1, C // 4), C))
    frequent = [i for i in frequent if i not in rare]
    # a look-alike pair reserves its (shape, colour): 2 of its 4 identities stay unused
    n_look = min(int(round(config.lookalike_fraction * len(rare))), len(frequent),
                 (MAX_CATEGORIES - C) // 2)
    children = sorted(rng.choice(rare, size=n_look, replace=False).tolist()) if n_look else []
    parents = rng.choice(frequent, size=n_look, replace=False).tolist() if n_look else []
    parent_of = dict(zip(children, parents))

    pairs = [(s, c) for s in SHAPES for c in COLOURS]
    pairs = [pairs[k] for k in rng.permutation(len(pairs))]
    identity: dict[int, tuple[str, str, str]] = {}
    used: set[tuple[str, str, str]] = set()
    reserved_pairs: set[tuple[str, str]] = set()
    # parents first, so that they always get a (shape, colour) pair of their own
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
            "parent_pos": parent_of.get(i),
        })
    pos_to_id = {s["pos"]: s["id"] for s in specs}
    for s in specs:
        s["lookalike_of"] = pos_to_id[s["parent_pos"]] if s["parent_pos"] is not None else None
    return sorted(specs, key=lambda s: s["id"])


# --------------------------------------------------------------------------------------------
# placement of categories into images
# --------------------------------------------------------------------------------------------


def _assign_categories(
    targets: dict[int, int], num_images: int, cap: int, rng: np.random.Generator
) -> list[list[int]]:
    """Give each category ``targets[cid]`` distinct images, least-loaded images first.

    Categories are placed in decreasing target order; ties and near-ties between images are broken
    at random (jitter < 2), so images hold roughly 2–5 categories. Images never exceed ``cap``
    categories; a target that cannot fit is truncated.
    """
    load = np.zeros(num_images, dtype=float)
    per_image: list[list[int]] = [[] for _ in range(num_images)]
    for cid in sorted(targets, key=lambda c: (-targets[c], c)):
        key = load + rng.random(num_images) * 1.5
        key[load >= cap] = np.inf
        k = min(targets[cid], int(np.isfinite(key).sum()))
        if k <= 0:
            continue
        chosen = np.argpartition(key, k - 1)[:k] if k < num_images else np.arange(num_images)
        for im in np.sort(chosen):
            per_image[int(im)].append(cid)
            load[im] += 1
    return per_image


# --------------------------------------------------------------------------------------------
# drawing
# --------------------------------------------------------------------------------------------


def _shape_mask(shape: str, w: int, h: int) -> np.ndarray:
    """Boolean mask (h, w) of ``shape`` filling a w x h box."""
    img = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(img)
    x1, y1 = w - 1, h - 1
    cx, cy = x1 / 2.0, y1 / 2.0
    if shape == "circle":
        d.ellipse([0, 0, x1, y1], fill=255)
    elif shape == "square":
        d.rectangle([0, 0, x1, y1], fill=255)
    elif shape == "triangle":
        d.polygon([(cx, 0), (x1, y1), (0, y1)], fill=255)
    elif shape == "diamond":
        d.polygon([(cx, 0), (x1, cy), (cx, y1), (0, cy)], fill=255)
    elif shape == "hexagon":
        d.polygon([(0.25 * x1, 0), (0.75 * x1, 0), (x1, cy), (0.75 * x1, y1), (0.25 * x1, y1),
                   (0, cy)], fill=255)
    elif shape == "cross":
        d.rectangle([0, round(h / 3), x1, round(2 * h / 3) - 1], fill=255)
        d.rectangle([round(w / 3), 0, round(2 * w / 3) - 1, y1], fill=255)
    elif shape == "ring":
        d.ellipse([0, 0, x1, y1], fill=255)
        a, b = max(2, round(0.28 * w)), max(2, round(0.28 * h))
        d.ellipse([a, b, x1 - a, y1 - b], fill=0)
    elif shape == "star":
        pts = []
        for k in range(10):
            ang = -math.pi / 2 + k * math.pi / 5
            r = 1.0 if k % 2 == 0 else 0.45
            pts.append((cx + r * cx * math.cos(ang), cy + r * cy * math.sin(ang) * 1.1 + 0.05 * y1))
        d.polygon(pts, fill=255)
    else:  # pragma: no cover - SHAPES is closed
        raise ValueError(f"unknown shape {shape!r}")
    return np.asarray(img) > 0


def _erode(mask: np.ndarray, steps: int) -> np.ndarray:
    m = mask.copy()
    for _ in range(steps):
        e = m.copy()
        e[1:, :] &= m[:-1, :]
        e[:-1, :] &= m[1:, :]
        e[:, 1:] &= m[:, :-1]
        e[:, :-1] &= m[:, 1:]
        e[0, :] = e[-1, :] = False
        e[:, 0] = e[:, -1] = False
        m = e
    return m


def _render_object(
    spec: dict[str, Any], w: int, h: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(mask (h, w) bool, rgb (h, w, 3) uint8) of one instance of category ``spec``."""
    mask = _shape_mask(spec["shape"], w, h)
    base = np.array(COLOURS[spec["color"]], dtype=int) + rng.integers(-12, 13, size=3)
    base = np.clip(base, 0, 255)
    lum = 0.299 * base[0] + 0.587 * base[1] + 0.114 * base[2]
    mark = np.array((20, 20, 20) if lum > 140 else (240, 240, 240))
    rgb = np.empty((h, w, 3), dtype=np.uint8)
    rgb[...] = base.astype(np.uint8)
    s = min(w, h)
    marking = spec["marking"]
    if marking == "striped":
        period = max(4, round(s / 4))
        yy, xx = np.mgrid[0:h, 0:w]
        stripes = ((xx + yy) % period) < (period // 2)
        rgb[stripes & mask] = mark
    elif marking == "dotted":
        r = max(2.0, 0.11 * s)
        yy, xx = np.mgrid[0:h, 0:w]
        dot = (xx - (w - 1) / 2.0) ** 2 + (yy - (h - 1) / 2.0) ** 2 <= r * r
        rgb[dot] = mark
        mask = mask | dot
    elif marking == "bordered":
        t = max(1, round(0.08 * s))
        rgb[mask & ~_erode(mask, t)] = mark
    return mask, rgb


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    """Cluttered low-saturation background: tint, gradient, noise, thin lines and blobs."""
    g = rng.uniform(95, 160)
    tint = rng.uniform(-12, 12, size=3)
    ang = rng.uniform(0, 2 * math.pi)
    ramp = np.linspace(-1.0, 1.0, size)
    grad = math.cos(ang) * ramp[None, :] + math.sin(ang) * ramp[:, None]
    img = g + tint[None, None, :] + rng.uniform(10, 25) * grad[..., None]
    img = img + rng.normal(0, 6, size=(size, size, 3))
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(pil)

    def dull() -> tuple[int, int, int]:
        v = g + rng.uniform(-35, 35)
        return tuple(int(np.clip(v + rng.uniform(-10, 10), 0, 255)) for _ in range(3))

    for _ in range(int(rng.integers(3, 9))):
        p = rng.uniform(0, size, size=4)
        d.line([float(p[0]), float(p[1]), float(p[2]), float(p[3])], fill=dull(),
               width=int(rng.integers(1, 3)))
    for _ in range(int(rng.integers(2, 6))):
        cx, cy = rng.uniform(0, size, size=2)
        rx, ry = rng.uniform(3, size / 6, size=2)
        d.ellipse([float(cx - rx), float(cy - ry), float(cx + rx), float(cy + ry)], fill=dull())
    return np.asarray(pil).copy()


def _sample_side(size: int, rng: np.random.Generator, allow_large: bool) -> int:
    """Side s of an object whose box area ~ s² is small (<32²), medium or large (>96²) in COCO terms."""
    small = (MIN_OBJECT_SIDE, min(30, size - 4))
    medium = (34, min(90, size - 8))
    large = (98, size - 4)
    choices, probs = [small], [0.45]
    if medium[1] >= medium[0]:
        choices.append(medium)
        probs.append(0.45)
    if allow_large and large[1] >= large[0]:
        choices.append(large)
        probs.append(0.10)
    p = np.array(probs) / sum(probs)
    lo, hi = choices[int(rng.choice(len(choices), p=p))]
    return int(rng.integers(lo, hi + 1))


def _place(
    w: int, h: int, colour: str, size: int, boxes: list[tuple[int, int, int, int]],
    covered: list[float], colours: list[str], rng: np.random.Generator, tries: int = 25,
) -> tuple[int, int] | None:
    """Top-left corner for a w x h box that covers at most MAX_OCCLUSION of each earlier box
    and does not touch the box of an earlier object of the same colour (it would blend in)."""
    for _ in range(tries):
        x = int(rng.integers(0, size - w + 1))
        y = int(rng.integers(0, size - h + 1))
        ok = True
        for (bx, by, bw, bh), cov, col in zip(boxes, covered, colours):
            iw = min(x + w, bx + bw) - max(x, bx)
            ih = min(y + h, by + bh) - max(y, by)
            if iw > 0 and ih > 0 and (col == colour or cov + iw * ih > MAX_OCCLUSION * bw * bh):
                ok = False
                break
        if ok:
            return x, y
    return None


def _render_image(
    specs_by_id: dict[int, dict[str, Any]], objects: list[tuple[int, bool]], size: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[tuple[int, list[float], bool]]]:
    """Draw ``objects`` ((category id, annotated), ...) on a background.

    Returns the image and (category id, tight [x, y, w, h] box, annotated) per drawn object.
    Objects are drawn largest first; an object that finds no room is shrunk, and an unannotated
    or extra instance that still finds none is dropped (required instances are forced in at the
    smallest size, so every assigned category is present).
    """
    img = _background(size, rng)
    planned = []
    n_large = 0
    for cid, annotated in objects:
        s = _sample_side(size, rng, allow_large=n_large == 0)
        n_large += s >= 98
        a = math.exp(rng.uniform(math.log(0.75), math.log(1.33)))
        w = int(np.clip(round(s * math.sqrt(a)), MIN_OBJECT_SIDE, size - 2))
        h = int(np.clip(round(s / math.sqrt(a)), MIN_OBJECT_SIDE, size - 2))
        planned.append((w * h, cid, annotated, w, h))
    # largest first (drawn underneath); the sort is stable for equal areas
    order = sorted(range(len(planned)), key=lambda k: -planned[k][0])
    boxes: list[tuple[int, int, int, int]] = []
    covered: list[float] = []
    colours: list[str] = []
    out: list[tuple[int, list[float], bool]] = []
    seen_required: set[int] = set()
    for k in order:
        _, cid, annotated, w, h = planned[k]
        required = annotated and cid not in seen_required
        colour = specs_by_id[cid]["color"]
        pos = _place(w, h, colour, size, boxes, covered, colours, rng)
        while pos is None and max(w, h) > MIN_OBJECT_SIDE:
            w = max(MIN_OBJECT_SIDE, int(w * 0.75))
            h = max(MIN_OBJECT_SIDE, int(h * 0.75))
            pos = _place(w, h, colour, size, boxes, covered, colours, rng)
        if pos is None:
            if not required:
                continue
            pos = (int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1)))
        x, y = pos
        mask, rgb = _render_object(specs_by_id[cid], w, h, rng)
        ys, xs = np.nonzero(mask)
        region = img[y:y + h, x:x + w]
        region[mask] = rgb[mask]
        x0, x1, y0, y1 = x + xs.min(), x + xs.max() + 1, y + ys.min(), y + ys.max() + 1
        for j, (bx, by, bw, bh) in enumerate(boxes):
            iw = min(x1, bx + bw) - max(x0, bx)
            ih = min(y1, by + bh) - max(y0, by)
            if iw > 0 and ih > 0:
                covered[j] += iw * ih
        boxes.append((int(x0), int(y0), int(x1 - x0), int(y1 - y0)))
        covered.append(0.0)
        colours.append(colour)
        out.append((cid, [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], annotated))
        if annotated:
            seen_required.add(cid)
    noisy = img.astype(np.int16) + rng.integers(-4, 5, size=img.shape, dtype=np.int16)
    return np.clip(noisy, 0, 255).astype(np.uint8), out


# --------------------------------------------------------------------------------------------
# splits and files
# --------------------------------------------------------------------------------------------


def _generate_split(
    split: str, specs: list[dict[str, Any]], num_images: int, first_image_id: int,
    first_ann_id: int, config: SyntheticConfig, image_dir: Path, rng: np.random.Generator,
    pbar: Any,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Draw and save one split's images; return its LVIS ``images`` and ``annotations`` lists."""
    target_key = "train_target" if split == "train" else "val_target"
    targets = {s["id"]: s[target_key] for s in specs}
    specs_by_id = {s["id"]: s for s in specs}
    all_ids = np.array(sorted(specs_by_id))
    max_obj = config.max_objects_per_image
    cap = min(MAX_CATEGORIES_PER_IMAGE, max_obj)
    per_image = _assign_categories(targets, num_images, cap, rng)
    size = config.image_size
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    ann_id = first_ann_id
    for k in range(num_images):
        image_id = first_image_id + k
        cats = sorted(per_image[k])
        objects: list[tuple[int, bool]] = [(c, True) for c in cats]
        for c in cats:
            if len(objects) < max_obj and rng.random() < EXTRA_INSTANCE_PROB:
                for _ in range(int(rng.integers(1, 3))):
                    if len(objects) < max_obj:
                        objects.append((c, True))
        hidden = None
        if cats and len(objects) < max_obj and rng.random() < NOT_EXHAUSTIVE_FRACTION:
            hidden = int(cats[int(rng.integers(len(cats)))])
            objects.append((hidden, False))
        pixels, drawn = _render_image(specs_by_id, objects, size, rng)

        file_name = f"{image_id:06d}.png"
        Image.fromarray(pixels).save(image_dir / file_name, format="PNG", compress_level=1)
        absent = np.setdiff1d(all_ids, np.array(cats, dtype=int))
        n_neg = min(len(absent), int(rng.integers(1, MAX_NEG_CATEGORIES + 1)))
        neg = sorted(int(c) for c in rng.choice(absent, size=n_neg, replace=False)) if n_neg else []
        not_exhaustive = (
            [hidden] if hidden is not None and any(c == hidden and not a for c, _, a in drawn) else []
        )
        images.append({
            "id": image_id,
            "file_name": file_name,
            "width": size,
            "height": size,
            "neg_category_ids": neg,
            "not_exhaustive_category_ids": not_exhaustive,
        })
        for cid, (x, y, w, h), annotated in drawn:
            if not annotated:
                continue
            anns.append({
                "id": ann_id,
                "image_id": image_id,
                "category_id": int(cid),
                "bbox": [x, y, w, h],
                "area": w * h,
                "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
                "iscrowd": 0,
            })
            ann_id += 1
        if pbar is not None:
            pbar.update(1)
    return images, anns


def _category_records(
    specs: list[dict[str, Any]], train_anns: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """LVIS category dicts; frequency by LVIS's rule from the ACTUAL train image counts."""
    img_sets: dict[int, set[int]] = {s["id"]: set() for s in specs}
    inst: dict[int, int] = {s["id"]: 0 for s in specs}
    for a in train_anns:
        img_sets[a["category_id"]].add(a["image_id"])
        inst[a["category_id"]] += 1
    records = []
    for s in specs:
        n_img = len(img_sets[s["id"]])
        marking_text = {
            "plain": "no marking",
            "striped": "diagonal stripes",
            "dotted": "a small central dot",
            "bordered": "a thin contrasting border",
        }[s["marking"]]
        records.append({
            "id": s["id"],
            "name": s["name"],
            "synset": f"synthetic.{s['name']}.n.01",
            "synonyms": [s["name"]],
            "def": f"a {s['color']} {s['shape']} with {marking_text} (synthetic category)",
            "frequency": frequency_from_image_count(n_img),
            "image_count": n_img,
            "instance_count": inst[s["id"]],
            "shape": s["shape"],
            "color": s["color"],
            "marking": s["marking"],
            "lookalike_of": s["lookalike_of"],
            "lvis_curve_source": s["lvis_curve_source"],
        })
    return records


def _config_record(config: SyntheticConfig) -> dict[str, Any]:
    return {
        "generator": "acsl.data.synthetic",
        "content_version": CONTENT_VERSION,
        "config": config.record(),
    }


def _write_json(path: Path, obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, separators=(",", ":"), sort_keys=False)
        f.write("\n")


def _existing(root: Path, config: SyntheticConfig) -> SyntheticBenchmark | None:
    """The benchmark at ``root`` if complete and equal to ``config``; None if root is absent/empty."""
    if not root.exists():
        return None
    if not root.is_dir():
        raise SyntheticDatasetExistsError(f"{root} exists and is not a directory; choose another root")
    cfg_path = root / "config.json"
    if not cfg_path.is_file():
        if any(root.iterdir()):
            raise SyntheticDatasetExistsError(
                f"{root} is not empty and holds no synthetic benchmark (no config.json); "
                "choose another root or delete it"
            )
        return None
    try:
        found = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SyntheticDatasetExistsError(
            f"{cfg_path} is unreadable ({e}); choose another root or delete {root}"
        ) from e
    wanted = _config_record(config)
    if found != wanted:
        raise SyntheticDatasetExistsError(
            f"{root} already holds a synthetic benchmark generated with a different config "
            f"({found.get('content_version')}, {found.get('config')}) than requested "
            f"({wanted['content_version']}, {wanted['config']}); choose another root or delete {root}"
        )
    bench = SyntheticBenchmark.at(root)
    missing = [p for p in (bench.train_json, bench.val_json, bench.train_images, bench.val_images)
               if not p.exists()]
    if missing:
        raise SyntheticDatasetExistsError(
            f"{root} holds config.json but is incomplete (missing {missing[0]}); delete {root} "
            "and generate again"
        )
    return bench


def generate_benchmark(
    root: str | Path, config: SyntheticConfig = SyntheticConfig(), progress: bool = True
) -> SyntheticBenchmark:
    """Generate the synthetic long-tail benchmark of ``config`` under ``root`` (DESIGN §7).

    Deterministic: the same config gives byte-identical JSON and PNG files (numpy PCG64 streams
    spawned from ``SeedSequence(config.seed)`` for design, train and val). Atomic: written into a
    temporary sibling directory and renamed into place. Idempotent: if ``root`` already holds a
    complete benchmark with an equal config it is returned without regenerating; a different
    config (or unrelated content) raises :class:`SyntheticDatasetExistsError`.
    """
    root = Path(root).absolute()
    done = _existing(root, config)
    if done is not None:
        return done
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        bench = SyntheticBenchmark.at(tmp)
        for p in (bench.train_json.parent, bench.train_images, bench.val_images):
            p.mkdir(parents=True, exist_ok=True)
        ss_design, ss_train, ss_val = np.random.SeedSequence(config.seed).spawn(3)
        specs = _design_categories(config, np.random.Generator(np.random.PCG64(ss_design)))

        pbar = None
        if progress:
            from tqdm import tqdm

            pbar = tqdm(total=config.num_train_images + config.num_val_images,
                        desc="synthetic benchmark", unit="img")
        try:
            train_images, train_anns = _generate_split(
                "train", specs, config.num_train_images, 1, 1, config, bench.train_images,
                np.random.Generator(np.random.PCG64(ss_train)), pbar)
            val_images, val_anns = _generate_split(
                "val", specs, config.num_val_images, config.num_train_images + 1,
                len(train_anns) + 1, config, bench.val_images,
                np.random.Generator(np.random.PCG64(ss_val)), pbar)
        finally:
            if pbar is not None:
                pbar.close()
        categories = _category_records(specs, train_anns)
        info = {
            "description": "acsl synthetic long-tail benchmark (DESIGN §7)",
            "version": CONTENT_VERSION,
            "config": dataclasses.asdict(config),
        }
        for path, imgs, anns in ((bench.train_json, train_images, train_anns),
                                 (bench.val_json, val_images, val_anns)):
            _write_json(path, {"info": info, "licenses": [], "images": imgs,
                               "annotations": anns, "categories": categories})
        _write_json(tmp / "config.json", _config_record(config))  # written last: marks complete

        if root.exists():
            root.rmdir()  # _existing() verified it is empty
        try:
            os.rename(tmp, root)
        except OSError:
            done = _existing(root, config)  # a concurrent generator finished first
            if done is None:
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return done
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SyntheticBenchmark.at(root)
