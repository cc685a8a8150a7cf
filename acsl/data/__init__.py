"""LVIS-format datasets, the synthetic long-tail benchmark and category statistics.

The data layer (docs/ARCHITECTURE.md, "Layers and packages"): it may import ``acsl.config``,
``acsl.io`` and its own modules, nothing from the engine, models or commands.
"""

from acsl.data.lvis_dataset import (
    AnnotationError,
    ImageReadError,
    ImagesMissingError,
    LVISDetection,
    collate_detection,
    validate_lvis_json,
)
from acsl.data.stats import (
    LVIS_TRAIN_IMAGES,
    STATS_DIR,
    category_image_counts,
    category_instance_counts,
    frequency_from_image_count,
    load_category_stats,
    lvis_split_statistics,
    split_statistics,
    statistics_table,
)
from acsl.data.synthetic import (
    CONTENT_VERSION,
    SyntheticBenchmark,
    SyntheticConfig,
    SyntheticDatasetExistsError,
    generate_benchmark,
)

__all__ = [
    "AnnotationError",
    "ImageReadError",
    "ImagesMissingError",
    "LVISDetection",
    "collate_detection",
    "validate_lvis_json",
    "LVIS_TRAIN_IMAGES",
    "STATS_DIR",
    "category_image_counts",
    "category_instance_counts",
    "frequency_from_image_count",
    "load_category_stats",
    "lvis_split_statistics",
    "split_statistics",
    "statistics_table",
    "CONTENT_VERSION",
    "SyntheticBenchmark",
    "SyntheticConfig",
    "SyntheticDatasetExistsError",
    "generate_benchmark",
]
