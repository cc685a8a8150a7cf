"""Numbers reported in the paper (Wang et al., CVPR 2021), transcribed for side-by-side tables.

These are the paper's results, never ours: reports place them next to the numbers our runs produce.
All values are percentages on LVIS v0.5 val, as printed in the paper (Faster R-CNN R50-FPN unless the
table says otherwise).
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


# Table 3: "Results with larger backbones ResNet101, ResNeXt-101 64x4d and stronger detector Cascade
# R-CNN." Keys: (detector, backbone, method); "Ours" is ACSL.
TABLE3_COLUMNS = ("mAP", "APr", "APc", "APf")
TABLE3: dict[tuple[str, str, str], dict[str, float]] = {
    ("Faster R-CNN", "ResNet-101", "baseline"): {"mAP": 22.36, "APr": 3.14, "APc": 21.82, "APf": 30.72},
    ("Faster R-CNN", "ResNet-101", "ACSL"): {"mAP": 27.49, "APr": 19.25, "APc": 27.60, "APf": 30.65},
    ("Faster R-CNN", "ResNeXt-101 64x4d", "baseline"): {"mAP": 24.70, "APr": 5.97, "APc": 24.64, "APf": 32.26},
    ("Faster R-CNN", "ResNeXt-101 64x4d", "ACSL"): {"mAP": 28.93, "APr": 21.78, "APc": 28.98, "APf": 31.72},
    ("Cascade R-CNN", "ResNet-101", "baseline"): {"mAP": 25.14, "APr": 3.96, "APc": 24.55, "APf": 34.35},
    ("Cascade R-CNN", "ResNet-101", "ACSL"): {"mAP": 29.71, "APr": 21.72, "APc": 29.43, "APf": 33.26},
    ("Cascade R-CNN", "ResNeXt-101 64x4d", "baseline"): {"mAP": 27.14, "APr": 4.36, "APc": 27.32, "APf": 36.03},
    ("Cascade R-CNN", "ResNeXt-101 64x4d", "ACSL"): {"mAP": 31.47, "APr": 23.39, "APc": 31.50, "APf": 34.66},
}
#: The paper's detectors → ``DetectorConfig.architecture``.
ARCHITECTURE = {"Faster R-CNN": "faster_rcnn", "Cascade R-CNN": "cascade_rcnn"}


def table3_frame() -> pd.DataFrame:
    """Table 3 as a DataFrame indexed by (detector, backbone, method)."""
    rows = [{"detector": d, "backbone": b, "method": m, **values} for (d, b, m), values in TABLE3.items()]
    return pd.DataFrame(rows).set_index(["detector", "backbone", "method"])


# Table 1: "Experiments on LVIS with different groups." BAGS-style group softmax with two groups split at
# a number of training instances: (0, d) and [d, ∞). Keys: the dividing line d.
TABLE1_COLUMNS = ("mAP", "APr", "APc", "APf")
TABLE1: dict[int, dict[str, float]] = {
    5: {"mAP": 22.74, "APr": 6.83, "APc": 22.14, "APf": 29.83},
    50: {"mAP": 25.30, "APr": 15.11, "APc": 24.99, "APf": 29.77},
    500: {"mAP": 25.66, "APr": 13.19, "APc": 25.98, "APf": 30.25},
    5000: {"mAP": 23.89, "APr": 8.27, "APc": 23.87, "APf": 30.16},
}


def table1_frame() -> pd.DataFrame:
    """Table 1 as a DataFrame indexed by the groups' dividing line (instances)."""
    rows = [{"groups": f"(0,{d}) [{d},∞)", "dividing_line": d, **values} for d, values in TABLE1.items()]
    return pd.DataFrame(rows).set_index("dividing_line")
