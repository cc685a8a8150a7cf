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
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from .hierarchy import ClassHierarchy
from .paths import image_path_candidates
from .validate import AnnotationError, FirstProblem, validate_records

__all__ = ["AnnotationError", "ImageReadError", "LVISDetection", "collate_detection"]


class ImageReadError(OSError):
    """An image file named by the annotations is missing or cannot be decoded (names the path)."""


class ImagesMissingError(FileNotFoundError):
    """Image files named by the annotations are missing (checked before training); names them."""


def validate_lvis_json(data: Any, path: str | Path) -> None:
    """Check the raw LVIS JSON ``data`` (loaded from ``path``) for every field the loaders, samplers and
    evaluator use, with the one validation ``acsl data check`` reports from
    (:func:`acsl.data.validate.validate_records`; its docstring lists the rules). Raises
    :class:`AnnotationError` at the first violation, naming the file, the field and the value found.
    The frequency rule (``frequency`` against ``image_count``) is left to ``acsl data check``: a val
    file's ``image_count`` may count another split."""
    validate_records(FirstProblem(path), data, frequency_rule=False)


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

    ``keep_decoded=True`` keeps every decoded image in memory (uint8) after its first read, so later
    epochs and runs sharing the dataset skip PNG decoding: for small datasets such as the synthetic
    benchmark (1000 images of 128 px: 49 MB), not for real LVIS.
    """

    def __init__(
        self,
        ann_file: str | Path,
        image_root: str | Path,
        train: bool = False,
        hflip_prob: float = 0.0,
        seed: int = 0,
        keep_decoded: bool = False,
    ) -> None:
        if not 0.0 <= float(hflip_prob) <= 1.0:
            raise ValueError(f"hflip_prob must be in [0, 1], got {hflip_prob!r}")
        self.ann_file = Path(ann_file)
        self.image_root = Path(image_root)
        self.train = bool(train)
        self.hflip_prob = float(hflip_prob)
        self.seed = int(seed)
        self.epoch = 0
        self._decoded: dict[int, np.ndarray] | None = {} if keep_decoded else None

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
        # An Open Images file's class hierarchy: a box of a class is also one of each ancestor, the labels the
        # multi-label loss trains (acsl.data.openimages_groups); an LVIS file has none.
        hierarchy = ClassHierarchy.from_category_json(data["hierarchy"]) if data.get("hierarchy") else None
        unknown = sorted({a for c in (hierarchy.parents if hierarchy else {}) for a in (c, *hierarchy.ancestors(c))}
                         - set(self.category_id_to_label))
        if unknown:
            raise AnnotationError(f"{self.ann_file}: field 'hierarchy' names category ids that are not in "
                                  f"'categories': {unknown[:10]}")
        expanded = {cid: (cid, *sorted(hierarchy.ancestors(cid))) if hierarchy else (cid,)
                    for cid in self.label_to_category_id}
        images_with: dict[int, set[int]] = {cid: set() for cid in self.label_to_category_id}
        classes_in: dict[int, set[int]] = {image_id: set() for image_id in self.image_ids}
        instances: dict[int, int] = dict.fromkeys(self.label_to_category_id, 0)
        for annotation in data["annotations"]:
            for cid in expanded[annotation["category_id"]]:
                images_with[cid].add(annotation["image_id"])
                instances[cid] += 1
                classes_in[annotation["image_id"]].add(self.category_id_to_label[cid])
        #: Per label 1..C (list index label − 1): training images containing the class, and its boxes, on the
        #: ancestor-expanded labels where the file has a ``hierarchy`` (Open Images).
        self.image_counts: list[int] = [len(images_with[cid]) for cid in self.label_to_category_id]
        self.instance_counts: list[int] = [instances[cid] for cid in self.label_to_category_id]
        #: Per item: the sorted labels (1..C) of the classes annotated in it, ancestors included (what image
        #: samplers need).
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

    def missing_images(self, count: int | None = None) -> list[int]:
        """The items (of the first ``count``; None: all) whose image file is at none of its candidate paths: one
        ``stat`` per candidate tried (LVIS v0.5: two per image, the 2014 name, then the 2017 one)."""
        return [index for index in range(self._first(count))
                if not any(p.is_file() for p in image_path_candidates(self.image_info(index), self.image_root))]

    def _first(self, count: int | None) -> int:
        return len(self) if count is None else min(count, len(self))

    def require_images(self, count: int | None = None, shown: int = 5) -> None:
        """Refuse (``ImagesMissingError``) a set whose image files (of the first ``count``) are not all there,
        before any training or evaluation reads them: how many are missing, the first ``shown`` with every path
        tried."""
        missing = self.missing_images(count)
        if not missing:
            return
        lines = [f"  image id {self.image_ids[index]}: tried "
                 f"{', '.join(str(p) for p in image_path_candidates(self.image_info(index), self.image_root))}"
                 for index in missing[:shown]]
        more = f"\n  … and {len(missing) - shown} more" if len(missing) > shown else ""
        raise ImagesMissingError(f"{len(missing)} of the {self._first(count)} images of {self.ann_file} are missing under "
                                 f"{self.image_root}:\n" + "\n".join(lines) + more +
                                 "\n(`acsl data check` lists them; `acsl data download` fetches the images)")

    def _load_image(self, index: int) -> torch.Tensor:
        arr = self._decoded.get(index) if self._decoded is not None else None
        if arr is None:
            arr = self._decode(index)
            if self._decoded is not None:
                self._decoded[index] = arr
        return torch.from_numpy(arr).permute(2, 0, 1).to(torch.float32).div_(255.0)

    def _decode(self, index: int) -> np.ndarray:
        path = self.image_path(index)
        info = self.image_info(index)
        try:
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
        except FileNotFoundError as e:
            tried = image_path_candidates(info, self.image_root)
            raise ImageReadError(f"image file not found for image id {info['id']} of {self.ann_file}: tried "
                                 f"{', '.join(str(p) for p in tried)}") from e
        except (OSError, ValueError, SyntaxError) as e:  # PIL's decode errors
            raise ImageReadError(f"cannot read image file {path}: {e}") from e
        h, w = arr.shape[:2]
        if (w, h) != (info["width"], info["height"]):
            raise ImageReadError(
                f"image file {path} is {w}x{h} but {self.ann_file} says "
                f"{info['width']}x{info['height']} (image id {info['id']})"
            )
        return np.array(arr, copy=True)  # writable, owned: torch.from_numpy shares it

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
            # the file's check allows an overhang of validate.BOX_OVERHANG_PX at most; clip it (a no-op inside)
            boxes[:, 0::2].clamp_(0, image.shape[-1])
            boxes[:, 1::2].clamp_(0, image.shape[-2])
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
