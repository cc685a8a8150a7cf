"""A torch ``Dataset`` over any LVIS-format annotation file, and the validation of such a file.

Works the same for real LVIS v0.5 / v1 files and for the synthetic benchmark (``acsl.data.synthetic``;
docs/ARCHITECTURE.md, "The synthetic benchmark"). The raw JSON is validated first for every field the
loaders rely on, so a broken file fails with an :class:`AnnotationError` naming the file, the field
and what was expected instead of a ``KeyError`` deep in a training loop; it is then indexed by image
id (images and their annotations, in file order, as ``lvis.LVIS`` indexes them; the tests hold the
two equal). The index is our own so that reading a dataset does not import the ``lvis`` package,
whose visualisation module pulls in OpenCV and matplotlib: a GPU machine needs neither to train.
Image paths are resolved by :mod:`acsl.data.paths`.

Conventions (torchvision detection models): labels are contiguous ``1..C`` in increasing LVIS
category id order, ``0`` is background; boxes are ``float32`` ``[x1, y1, x2, y2]`` in pixels,
converted from LVIS ``[x, y, w, h]``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, NoReturn, Sequence

import numpy as np
import torch
from PIL import Image

from .paths import image_path_candidates

__all__ = ["AnnotationError", "ImageReadError", "LVISDetection", "collate_detection"]


class AnnotationError(ValueError):
    """An LVIS-format annotation file is unreadable or lacks a field the loaders need.

    The message names the file, the field (e.g. ``categories[3].frequency``) and what was expected.
    """


class ImageReadError(OSError):
    """An image file named by the annotations is missing or cannot be decoded (names the path)."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fail(path: str | Path, field: str, expected: str, got: Any = None) -> NoReturn:
    """Raise the :class:`AnnotationError` that names ``path``, ``field`` and what was expected."""
    got_s = "" if got is None else f", got {got!r}"[:200]
    raise AnnotationError(f"{path}: field {field!r}: expected {expected}{got_s}")


def validate_lvis_json(data: Any, path: str | Path) -> None:
    """Check the raw LVIS JSON ``data`` (loaded from ``path``) for the fields the loaders use.

    images[*]: id (int, unique), file_name or coco_url (str), width and height (ints > 0);
    categories: non-empty, each with id (int, unique), name (str), frequency in {r, c, f}
    (LVIS's rare/common/frequent groups); annotations[*]: id, image_id and category_id of known
    images/categories, bbox of 4 finite numbers with w > 0 and h > 0.
    Raises :class:`AnnotationError` on the first violation.
    """
    if not isinstance(data, dict):
        _fail(path, "<top level>", "a JSON object", type(data).__name__)
    for key in ("images", "annotations", "categories"):
        if key not in data:
            _fail(path, key, "a list (missing)")
        if not isinstance(data[key], list):
            _fail(path, key, "a list", type(data[key]).__name__)
    cat_ids = _validate_categories(data["categories"], path)
    img_ids = _validate_images(data["images"], path)
    _validate_annotations(data["annotations"], img_ids, cat_ids, path)


def _validate_categories(cats: list[Any], path: str | Path) -> set[int]:
    """A non-empty list of categories with unique int ids, str names and r/c/f frequencies; their ids."""
    if not cats:
        _fail(path, "categories", "a non-empty list of categories")
    cat_ids: set[int] = set()
    for k, c in enumerate(cats):
        f = f"categories[{k}]"
        if not isinstance(c, dict):
            _fail(path, f, "an object", c)
        if not _is_int(c.get("id")):
            _fail(path, f"{f}.id", "an integer id", c.get("id"))
        if c["id"] in cat_ids:
            _fail(path, f"{f}.id", "a unique category id", c["id"])
        cat_ids.add(c["id"])
        if not isinstance(c.get("name"), str):
            _fail(path, f"{f}.name", "a string", c.get("name"))
        if "frequency" not in c:
            _fail(path, f"{f}.frequency", "one of 'r', 'c', 'f' (missing)")
        if c["frequency"] not in ("r", "c", "f"):
            _fail(path, f"{f}.frequency", "one of 'r', 'c', 'f'", c["frequency"])
    return cat_ids


def _validate_images(images: list[Any], path: str | Path) -> set[int]:
    """Images with unique int ids, a path field, positive sizes and list-valued federated fields;
    their ids."""
    img_ids: set[int] = set()
    for k, im in enumerate(images):
        f = f"images[{k}]"
        if not isinstance(im, dict):
            _fail(path, f, "an object", im)
        if not _is_int(im.get("id")):
            _fail(path, f"{f}.id", "an integer id", im.get("id"))
        if im["id"] in img_ids:
            _fail(path, f"{f}.id", "a unique image id", im["id"])
        img_ids.add(im["id"])
        if not isinstance(im.get("file_name"), str) and not isinstance(im.get("coco_url"), str):
            _fail(path, f"{f}.file_name", "a string file_name or coco_url (neither present)")
        for dim in ("width", "height"):
            if not _is_int(im.get(dim)) or im[dim] <= 0:
                _fail(path, f"{f}.{dim}", "a positive integer", im.get(dim))
        for lst in ("neg_category_ids", "not_exhaustive_category_ids"):
            if lst in im and not isinstance(im[lst], list):
                _fail(path, f"{f}.{lst}", "a list of category ids", im[lst])
    return img_ids


def _validate_annotations(anns: list[Any], img_ids: set[int], cat_ids: set[int], path: str | Path) -> None:
    """Annotations with unique int ids, known image and category ids and a valid ``[x, y, w, h]``."""
    ann_ids: set[int] = set()
    for k, a in enumerate(anns):
        f = f"annotations[{k}]"
        if not isinstance(a, dict):
            _fail(path, f, "an object", a)
        if not _is_int(a.get("id")):
            _fail(path, f"{f}.id", "an integer id", a.get("id"))
        if a["id"] in ann_ids:
            _fail(path, f"{f}.id", "a unique annotation id", a["id"])
        ann_ids.add(a["id"])
        if not _is_int(a.get("image_id")):
            _fail(path, f"{f}.image_id", "an integer image id", a.get("image_id"))
        if a["image_id"] not in img_ids:
            _fail(path, f"{f}.image_id", "the id of an image in 'images' (unknown image id)", a["image_id"])
        if not _is_int(a.get("category_id")):
            _fail(path, f"{f}.category_id", "an integer category id", a.get("category_id"))
        if a["category_id"] not in cat_ids:
            _fail(path, f"{f}.category_id", "the id of a category in 'categories' (unknown category id)",
                  a["category_id"])
        bbox = a.get("bbox")
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4 or not all(map(_is_number, bbox)):
            _fail(path, f"{f}.bbox", "[x, y, w, h]: 4 finite numbers", bbox)
        if bbox[2] <= 0 or bbox[3] <= 0:
            _fail(path, f"{f}.bbox", "w > 0 and h > 0", bbox)


class LVISIndex:
    """An LVIS-format dict indexed by id: ``imgs`` (image id → record), ``cats`` (category id →
    record), ``anns`` (annotation id → record) and ``img_ann_map`` (image id → its annotations in file
    order) — the fields of ``lvis.LVIS`` that the loaders use, with the same contents."""

    def __init__(self, dataset: dict[str, Any]) -> None:
        self.dataset = dataset
        self.imgs = {image["id"]: image for image in dataset["images"]}
        self.cats = {category["id"]: category for category in dataset["categories"]}
        self.anns = {annotation["id"]: annotation for annotation in dataset["annotations"]}
        self.img_ann_map: dict[int, list[dict[str, Any]]] = {}
        for annotation in dataset["annotations"]:
            self.img_ann_map.setdefault(annotation["image_id"], []).append(annotation)


def _seed_from(*values: int) -> int:
    return int(np.random.SeedSequence([int(v) & 0xFFFFFFFF for v in values]).generate_state(1)[0])


class LVISDetection(torch.utils.data.Dataset):
    """Detection dataset over an LVIS-format file; items are ``(image, target)``.

    ``image``: float32 tensor ``3 x H x W`` in [0, 1]. ``target``: ``boxes`` float32 ``[K, 4]``
    xyxy, ``labels`` int64 ``[K]`` in ``1..num_classes``, ``image_id`` int64 scalar tensor.
    Images without annotations are kept (``boxes`` of shape ``[0, 4]``).

    Image path: ``image_root / file_name`` if the image has ``file_name``, else
    ``image_root / basename(coco_url)`` (LVIS v1 style).

    With ``train=True`` and ``hflip_prob > 0`` an image is flipped horizontally with probability
    ``hflip_prob``, decided by a ``torch.Generator`` seeded from ``(seed, epoch, index)``: the
    same epoch and index always give the same flip; call :meth:`set_epoch` each epoch.
    """

    def __init__(
        self,
        ann_file: str | Path,
        image_root: str | Path,
        train: bool = False,
        hflip_prob: float = 0.0,
        seed: int = 0,
    ) -> None:
        if not 0.0 <= float(hflip_prob) <= 1.0:
            raise ValueError(f"hflip_prob must be in [0, 1], got {hflip_prob!r}")
        self.ann_file = Path(ann_file)
        self.image_root = Path(image_root)
        self.train = bool(train)
        self.hflip_prob = float(hflip_prob)
        self.seed = int(seed)
        self.epoch = 0

        try:
            with open(self.ann_file, "r", encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"annotation file not found: {self.ann_file}") from e
        except (ValueError, UnicodeDecodeError) as e:
            raise AnnotationError(f"{self.ann_file}: not a parseable JSON file ({e})") from e
        validate_lvis_json(data, self.ann_file)
        self.lvis = LVISIndex(data)

        self.categories: list[dict[str, Any]] = sorted(data["categories"], key=lambda c: c["id"])
        self.num_classes: int = len(self.categories)
        self.label_to_category_id: list[int] = [int(c["id"]) for c in self.categories]
        self.category_id_to_label: dict[int, int] = {
            cid: k + 1 for k, cid in enumerate(self.label_to_category_id)
        }
        self.frequencies: list[str] = [str(c["frequency"]) for c in self.categories]
        self.image_ids: list[int] = [int(im["id"]) for im in data["images"]]
        images_with: dict[int, set[int]] = {cid: set() for cid in self.label_to_category_id}
        classes_in: dict[int, set[int]] = {image_id: set() for image_id in self.image_ids}
        instances: dict[int, int] = dict.fromkeys(self.label_to_category_id, 0)
        for annotation in data["annotations"]:
            images_with[annotation["category_id"]].add(annotation["image_id"])
            instances[annotation["category_id"]] += 1
            classes_in[annotation["image_id"]].add(self.category_id_to_label[annotation["category_id"]])
        #: Per label 1..C (list index label − 1): training images containing the class, and its boxes.
        self.image_counts: list[int] = [len(images_with[cid]) for cid in self.label_to_category_id]
        self.instance_counts: list[int] = [instances[cid] for cid in self.label_to_category_id]
        #: Per item: the sorted labels (1..C) of the classes annotated in it (what image samplers need).
        self.image_labels: list[tuple[int, ...]] = [tuple(sorted(classes_in[i])) for i in self.image_ids]

    # ------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.image_ids)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose flip decisions ``__getitem__`` uses (deterministic per index)."""
        self.epoch = int(epoch)

    def image_info(self, index: int) -> dict[str, Any]:
        """The LVIS ``images`` record of item ``index``."""
        return self.lvis.imgs[self.image_ids[index]]

    def image_path(self, index: int) -> Path:
        """Path of item ``index``'s image: the first existing of ``image_path_candidates`` (v0.5
        ``file_name``, v1 ``coco_url`` as "train2017/x.jpg" or "x.jpg"), else the best candidate, which
        the reader then reports as missing."""
        candidates = image_path_candidates(self.image_info(index), self.image_root)
        return next((p for p in candidates if p.is_file()), candidates[0])

    def _load_image(self, index: int) -> torch.Tensor:
        path = self.image_path(index)
        info = self.image_info(index)
        try:
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
        except FileNotFoundError as e:
            raise ImageReadError(f"image file not found: {path}") from e
        except (OSError, ValueError, SyntaxError) as e:  # PIL's decode errors
            raise ImageReadError(f"cannot read image file {path}: {e}") from e
        h, w = arr.shape[:2]
        if (w, h) != (info["width"], info["height"]):
            raise ImageReadError(
                f"image file {path} is {w}x{h} but {self.ann_file} says "
                f"{info['width']}x{info['height']} (image id {info['id']})"
            )
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).to(torch.float32).div_(255.0)

    @property
    def flips(self) -> bool:
        """Whether training flips images at all (``train`` and ``hflip_prob`` > 0)."""
        return self.train and self.hflip_prob > 0

    def is_flipped(self, index: int, epoch: int | None = None) -> bool:
        """Whether item ``index`` is flipped in ``epoch`` (default: the current one)."""
        if not (self.train and self.hflip_prob > 0):
            return False
        g = torch.Generator().manual_seed(_seed_from(self.seed, self.epoch if epoch is None else epoch, index))
        return torch.rand((), generator=g).item() < self.hflip_prob

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.get(index)

    def get(self, index: int, flip: bool | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Item ``index``, flipped as the epoch decides (``flip=None``) or as ``flip`` says."""
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        image_id = self.image_ids[index]
        image = self._load_image(index)
        anns = self.lvis.img_ann_map.get(image_id, [])
        if anns:
            xywh = torch.tensor([a["bbox"] for a in anns], dtype=torch.float64)
            boxes = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1).to(torch.float32)
            labels = torch.tensor(
                [self.category_id_to_label[a["category_id"]] for a in anns], dtype=torch.int64
            )
        else:
            boxes = torch.zeros((0, 4), dtype=torch.float32)
            labels = torch.zeros((0,), dtype=torch.int64)

        if self.is_flipped(index) if flip is None else flip:
            width = image.shape[-1]
            image = image.flip(-1)
            boxes = torch.stack(
                [width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1
            )
        target = {
            "boxes": boxes,
            "labels": labels,
            "image_id": torch.tensor(image_id, dtype=torch.int64),
        }
        return image, target


def collate_detection(
    batch: Sequence[tuple[torch.Tensor, dict[str, torch.Tensor]]],
) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Collate detection items into (list of images, list of targets), torchvision style."""
    images = [item[0] for item in batch]
    targets = [item[1] for item in batch]
    return images, targets
