"""LVIS-format datasets, the synthetic long-tail benchmark and category statistics (DESIGN §2, §7)."""

from acsl.data.lvis_dataset import (
    AnnotationError,
    ImageReadError,
    LVISDetection,
    collate_detection,
    validate_lvis_json,
)
from acsl.data.stats import (
    STATS_DIR,
    category_image_counts,
    category_instance_counts,
    frequency_from_image_count,
    load_category_stats,
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
    "LVISDetection",
    "collate_detection",
    "validate_lvis_json",
    "STATS_DIR",
    "category_image_counts",
    "category_instance_counts",
    "frequency_from_image_count",
    "load_category_stats",
    "CONTENT_VERSION",
    "SyntheticBenchmark",
    "SyntheticConfig",
    "SyntheticDatasetExistsError",
    "generate_benchmark",
]
