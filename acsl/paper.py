"""Numbers reported in the paper (Wang et al., CVPR 2021), transcribed for side-by-side tables.

These are the paper's results, never ours: reports place them next to the numbers our runs produce.
All values are percentages on LVIS v0.5 val, Faster R-CNN R50-FPN, as printed in the paper.
"""

from __future__ import annotations

import pandas as pd

TABLE2_COLUMNS = ("mAP", "APr", "APc", "APf")

# Table 2: "Experimental results of ACSL with different ξ." Keys: row label, ξ (None for baselines).
TABLE2: dict[tuple[str, float | None], dict[str, float]] = {
    ("baseline (1x)", None): {"mAP": 21.18, "APr": 4.30, "APc": 20.09, "APf": 29.28},
    ("baseline (2x)", None): {"mAP": 22.28, "APr": 7.38, "APc": 22.34, "APf": 28.17},
    ("ACSL", 0.01): {"mAP": 23.53, "APr": 11.48, "APc": 22.73, "APf": 29.35},
    ("ACSL", 0.1): {"mAP": 25.11, "APr": 16.04, "APc": 24.72, "APf": 29.22},
    ("ACSL", 0.3): {"mAP": 25.72, "APr": 17.65, "APc": 25.45, "APf": 29.27},
    ("ACSL", 0.5): {"mAP": 26.08, "APr": 18.61, "APc": 25.85, "APf": 29.36},
    ("ACSL", 0.7): {"mAP": 26.36, "APr": 18.64, "APc": 26.41, "APf": 29.37},
    ("ACSL", 0.9): {"mAP": 25.99, "APr": 17.25, "APc": 26.00, "APf": 29.46},
}


def table2_frame() -> pd.DataFrame:
    """Table 2 as a DataFrame indexed by (method, ξ)."""
    rows = [{"method": method, "xi": xi, **values} for (method, xi), values in TABLE2.items()]
    return pd.DataFrame(rows).set_index(["method", "xi"])
