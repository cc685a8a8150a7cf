"""The embedded synthetic long-tail detection benchmark (the ``quick`` profile's data; docs/ARCHITECTURE.md,
"The synthetic benchmark").

``generate_benchmark(root, SyntheticConfig(...))`` writes, deterministically from ``config.seed``,
an LVIS-format dataset::

    root/config.json                      the config and CONTENT_VERSION (marks a complete dataset)
    root/annotations/train.json           LVIS format (images, annotations, categories)
    root/annotations/val.json
    root/images/train/000001.png ...      image ``file_name`` is relative to its split's folder
    root/images/val/001201.png ...

The package, one job per module:

* :mod:`.curve` -- **the long-tail curve.** The categories take the image counts of the real LVIS
  v0.5 train categories at evenly spaced quantiles of the sorted count curve
  (``data/stats/lvis_v0.5_train_categories.csv``), so the r/c/f shares follow LVIS (~37/37/26 %).
  Counts <= 100 are kept; the frequent range (100, max] is compressed log-linearly into
  (100, max_f] with ``max_f = 0.5 * num_train_images``, lowered further until the total fits
  ``MEAN_CATEGORIES_PER_IMAGE`` categories per train image (and scaled down proportionally, then
  clipped to the number of images, when even that does not fit: small configs such as ``smoke``).
  ``curve="openimages"`` follows Open Images' box counts instead, scaled as a whole. Val: every
  category appears in at least ``min(3, num_val_images)`` val images, with a flatter distribution
  (targets proportional to train target ** 0.25).
* :mod:`.categories` -- **identities and look-alikes.** Category identity = shape x colour x marking
  (``SHAPES``, ``COLOURS``, ``MARKINGS``). About ``lookalike_fraction`` of the rare-curve categories
  copy the shape and colour of a frequent-curve category whose marking is ``plain`` and add only a
  small central dot or a thin border (the paper's "sunglasses" vs "eye mask"); the category records
  ``"lookalike_of": parent_id`` (``None`` otherwise).
* :mod:`.render` -- **objects.** Flat, high-contrast colours on cluttered low-saturation backgrounds;
  COCO small, medium and (when ``image_size`` allows) large sizes; tight boxes; bounded occlusion.
* :mod:`.splits` -- **images, annotations and federated fields** of one split; category records whose
  ``frequency`` follows LVIS's rule on the *actual* train image counts (r <= 10, c 11–100, f > 100;
  :func:`acsl.data.stats.frequency_from_image_count`).
* :mod:`.generate` -- **files.** Generation is atomic (written into a temporary sibling directory,
  then renamed) and idempotent (an existing root with an equal config is returned untouched; a
  different config raises).
"""

from acsl.config import CURVES, MAX_CATEGORIES, SyntheticConfig

from .categories import COLOURS, MARKINGS, SHAPES
from .curve import (
    BASE_INSTANCES_PER_IMAGE,
    MAX_CATEGORIES_PER_IMAGE,
    MEAN_CATEGORIES_PER_IMAGE,
    MIN_VAL_IMAGES_PER_CATEGORY,
    VAL_MEAN_CATEGORIES_PER_IMAGE,
)
from .generate import CONTENT_VERSION, SyntheticBenchmark, SyntheticDatasetExistsError, generate_benchmark
from .render import MAX_OCCLUSION, MIN_OBJECT_SIDE
from .splits import MAX_NEG_CATEGORIES, NOT_EXHAUSTIVE_FRACTION

__all__ = [
    "CONTENT_VERSION",
    "SyntheticConfig",
    "SyntheticBenchmark",
    "SyntheticDatasetExistsError",
    "generate_benchmark",
    "SHAPES",
    "COLOURS",
    "MARKINGS",
    "CURVES",
    "MAX_CATEGORIES",
    "MEAN_CATEGORIES_PER_IMAGE",
    "MAX_CATEGORIES_PER_IMAGE",
    "VAL_MEAN_CATEGORIES_PER_IMAGE",
    "MIN_VAL_IMAGES_PER_CATEGORY",
    "MAX_NEG_CATEGORIES",
    "NOT_EXHAUSTIVE_FRACTION",
    "BASE_INSTANCES_PER_IMAGE",
    "MIN_OBJECT_SIDE",
    "MAX_OCCLUSION",
]
