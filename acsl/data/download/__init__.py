"""Downloads of the real datasets: LVIS v0.5 / v1 annotations, the COCO 2017 images they use, and the
Open Images Challenge 2019 annotations.

* :mod:`.catalogue` -- the datasets, their archives (URLs, documented checksums, layout),
  :func:`require_data` and :class:`DataMissingError`;
* :mod:`.fetch` -- :func:`download_dataset`: HTTP download with resume;
* :mod:`.verify` -- size and checksum verification, the trust-on-first-use checksum record;
* :mod:`.extract` -- all-or-nothing zip extraction.
"""

from .catalogue import (
    CHECKSUM_RECORD,
    DATASETS,
    DOWNLOAD_DIR,
    OPENIMAGES_FILES,
    Archive,
    DataMissingError,
    DatasetSpec,
    DownloadError,
    fetch_command,
    missing_data,
    require_data,
)
from .fetch import download_dataset

__all__ = [
    "Archive",
    "DatasetSpec",
    "DATASETS",
    "CHECKSUM_RECORD",
    "DOWNLOAD_DIR",
    "DownloadError",
    "DataMissingError",
    "download_dataset",
    "missing_data",
    "require_data",
    "fetch_command",
]
