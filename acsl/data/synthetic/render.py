"""Drawing of synthetic images: cluttered backgrounds, objects, their placement and tight boxes.

Objects are drawn with flat, high-contrast colours on cluttered low-saturation backgrounds (noise, a
gradient, thin lines and blobs). Sizes cover COCO's small (< 32²), medium and, when ``image_size``
allows, large (> 96²) areas. Boxes are the exact extent of the object's drawn pixels (tight); later
(smaller) objects may overlap earlier ones by at most ``MAX_OCCLUSION`` of their box
(docs/ARCHITECTURE.md, "The synthetic benchmark").
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from .categories import COLOURS

__all__ = ["MIN_OBJECT_SIDE", "MAX_OCCLUSION", "render_image"]

MIN_OBJECT_SIDE = 12
MAX_OCCLUSION = 0.3  # at most this fraction of an object's box may be covered by later objects
#: In an image of n objects a medium object's side is at most sqrt(CROWDED_AREA_FRACTION * area / n).
CROWDED_AREA_FRACTION = 2.0
#: Images with more objects than this draw none large (> 96² pixels).
MAX_OBJECTS_WITH_LARGE = 8

Box = tuple[int, int, int, int]  # x, y, w, h in pixels


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
    """``mask`` eroded ``steps`` times with a 4-neighbourhood (the image border counts as outside)."""
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


def _sample_side(size: int, rng: np.random.Generator, allow_large: bool, crowd: int = 1) -> int:
    """Side s of an object whose box area ~ s² is small (<32²), medium or large (>96²) in COCO terms. In an
    image of ``crowd`` objects the medium range ends at ``CROWDED_AREA_FRACTION`` of the image's area per
    object (at least a medium object's smallest side) and no object is large past ``MAX_OBJECTS_WITH_LARGE``,
    so crowded images keep their instances, as LVIS's crowded images hold many small ones."""
    per_object = int(math.sqrt(CROWDED_AREA_FRACTION * size * size / max(1, crowd)))
    small = (MIN_OBJECT_SIDE, min(30, size - 4))
    medium = (34, min(90, size - 8, max(34, per_object)))
    large = (98, size - 4)
    choices, probs = [small], [0.45]
    if medium[1] >= medium[0]:
        choices.append(medium)
        probs.append(0.45)
    if allow_large and crowd <= MAX_OBJECTS_WITH_LARGE and large[1] >= large[0]:
        choices.append(large)
        probs.append(0.10)
    p = np.array(probs) / sum(probs)
    lo, hi = choices[int(rng.choice(len(choices), p=p))]
    return int(rng.integers(lo, hi + 1))


def _place(
    w: int, h: int, colour: str, size: int, boxes: list[Box],
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


def _plan_sizes(
    objects: list[tuple[int, bool]], size: int, rng: np.random.Generator
) -> list[tuple[int, int, bool, int, int]]:
    """(area, category id, annotated, w, h) per object: a COCO size class (at most one large object
    per image) and an aspect ratio in [0.75, 1.33]."""
    planned = []
    n_large = 0
    for cid, annotated in objects:
        s = _sample_side(size, rng, allow_large=n_large == 0, crowd=len(objects))
        n_large += s >= 98
        a = math.exp(rng.uniform(math.log(0.75), math.log(1.33)))
        w = int(np.clip(round(s * math.sqrt(a)), MIN_OBJECT_SIDE, size - 2))
        h = int(np.clip(round(s / math.sqrt(a)), MIN_OBJECT_SIDE, size - 2))
        planned.append((w * h, cid, annotated, w, h))
    return planned


def render_image(
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
    planned = _plan_sizes(objects, size, rng)
    # largest first (drawn underneath); the sort is stable for equal areas
    order = sorted(range(len(planned)), key=lambda k: -planned[k][0])
    boxes: list[Box] = []
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
        box = _draw_object(img, specs_by_id[cid], pos, w, h, rng)
        _add_coverage(box, boxes, covered)
        boxes.append(box)
        covered.append(0.0)
        colours.append(colour)
        out.append((cid, [float(v) for v in box], annotated))
        if annotated:
            seen_required.add(cid)
    noisy = img.astype(np.int16) + rng.integers(-4, 5, size=img.shape, dtype=np.int16)
    return np.clip(noisy, 0, 255).astype(np.uint8), out


def _draw_object(
    img: np.ndarray, spec: dict[str, Any], pos: tuple[int, int], w: int, h: int, rng: np.random.Generator
) -> Box:
    """Paint one instance of ``spec`` into ``img`` at ``pos``; its tight box (x, y, w, h)."""
    x, y = pos
    mask, rgb = _render_object(spec, w, h, rng)
    ys, xs = np.nonzero(mask)
    region = img[y:y + h, x:x + w]
    region[mask] = rgb[mask]
    x0, x1, y0, y1 = x + xs.min(), x + xs.max() + 1, y + ys.min(), y + ys.max() + 1
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def _add_coverage(box: Box, boxes: list[Box], covered: list[float]) -> None:
    """Add the overlap of the new ``box`` with each earlier box to that box's covered area."""
    x0, y0, bw0, bh0 = box
    x1, y1 = x0 + bw0, y0 + bh0
    for j, (bx, by, bw, bh) in enumerate(boxes):
        iw = min(x1, bx + bw) - max(x0, bx)
        ih = min(y1, by + bh) - max(y0, by)
        if iw > 0 and ih > 0:
            covered[j] += iw * ih

