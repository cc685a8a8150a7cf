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


# Table 4: "Comparison with state-of-the-art methods on LVIS-v0.5 val dataset." Keys: (method, backbone);
# None where the paper prints "−"; "(ms)" is multi-scale testing.
TABLE4_COLUMNS = ("mAP", "APr", "APc", "APf", "AP50", "AP75", "APs", "APm", "APl")
_R50, _R101, _X101 = "ResNet-50", "ResNet-101", "ResNeXt-101 64x4d"


def _row(*values: float | None) -> dict[str, float | None]:
    return dict(zip(TABLE4_COLUMNS, values, strict=True))


TABLE4: dict[tuple[str, str], dict[str, float | None]] = {
    ("Focal Loss", _R50): _row(21.95, 10.49, 22.42, 25.93, 35.15, 23.91, 18.66, 28.59, 31.46),
    ("CBL", _R50): _row(23.9, 11.4, 23.8, 27.3, None, None, None, None, None),
    ("LDAM", _R50): _row(24.5, 14.6, 25.3, 26.3, None, None, None, None, None),
    ("RFS", _R50): _row(24.9, 14.4, 24.5, 29.5, 41.6, 25.8, 19.8, 30.6, 37.2),
    ("LWS", _R50): _row(24.1, 14.4, 24.4, 26.8, None, None, None, None, None),
    ("SimCal", _R50): _row(23.4, 16.4, 22.5, 27.2, None, None, None, None, None),
    ("EQL", _R50): _row(25.06, 11.92, 25.98, 29.14, 40.14, 27.30, 20.08, 31.50, 38.67),
    ("EQL", _R101): _row(26.05, 11.45, 27.14, 30.51, 41.30, 27.83, 20.35, 33.73, 40.75),
    ("EQL", _X101): _row(28.04, 15.03, 29.14, 31.87, 44.06, 30.07, 22.19, 34.52, 42.97),
    ("BAGS", _R50): _row(25.96, 17.65, 25.75, 29.54, 43.58, 27.15, 20.26, 32.81, 40.10),
    ("BAGS", _R101): _row(26.39, 16.80, 25.82, 30.93, 43.44, 27.63, 20.29, 34.39, 41.07),
    ("BAGS", _X101): _row(27.83, 18.78, 27.32, 32.07, 45.83, 28.99, 21.92, 35.65, 43.11),
    ("ACSL", _R50): _row(26.36, 18.64, 26.41, 29.37, 42.38, 28.63, 20.43, 33.11, 40.21),
    ("ACSL", _R101): _row(27.49, 19.25, 27.60, 30.65, 43.45, 29.69, 21.11, 34.96, 42.00),
    ("ACSL", _X101): _row(28.93, 21.78, 28.98, 31.72, 45.54, 31.19, 22.16, 35.81, 43.43),
    ("ACSL", _R50 + " (ms)"): _row(27.24, 17.86, 27.42, 30.76, 44.46, 28.54, 20.96, 34.40, 41.68),
    ("ACSL", _R101 + " (ms)"): _row(28.23, 17.42, 28.40, 32.32, 44.73, 30.13, 21.86, 35.43, 44.06),
    ("ACSL", _X101 + " (ms)"): _row(29.47, 20.30, 29.45, 33.15, 46.82, 31.55, 22.52, 37.32, 45.51),
}


def table4_frame() -> pd.DataFrame:
    """Table 4 as a DataFrame indexed by (method, backbone); NaN where the paper prints "−"."""
    rows = [{"method": m, "backbone": b, **values} for (m, b), values in TABLE4.items()]
    return pd.DataFrame(rows).set_index(["method", "backbone"]).astype(float)


# Table 5: "Experiments on Open Images with different backbones." AP = the challenge metric (AP@0.5), %.
TABLE5: dict[tuple[str, str], float] = {
    ("ResNet50-FPN", "baseline"): 55.1, ("ResNet50-FPN", "ACSL"): 60.3,
    ("ResNet101-FPN", "baseline"): 56.3, ("ResNet101-FPN", "ACSL"): 61.6,
    ("ResNet152-FPN", "baseline"): 57.4, ("ResNet152-FPN", "ACSL"): 62.8,
}


def table5_frame() -> pd.DataFrame:
    """Table 5 as a DataFrame indexed by (backbone, method), column "AP"."""
    rows = [{"backbone": b, "method": m, "AP": v} for (b, m), v in TABLE5.items()]
    return pd.DataFrame(rows).set_index(["backbone", "method"])


# Table 6: "The detailed precision on some of the tail categories of Open Images." The paper prints only
# three-letter abbreviations (it names "Fac" as "Face powder" in the text); img num = training images.
TABLE6: dict[str, dict[str, float]] = {
    "Spa": {"img_num": 38, "baseline": 35.0, "ACSL": 41.6},
    "Scr": {"img_num": 46, "baseline": 46.6, "ACSL": 55.6},
    "Fac": {"img_num": 49, "baseline": 17.8, "ACSL": 80.9},
    "Cas": {"img_num": 53, "baseline": 19.9, "ACSL": 47.5},
    "Hor": {"img_num": 54, "baseline": 8.3, "ACSL": 16.6},
    "Slo": {"img_num": 103, "baseline": 25.0, "ACSL": 45.0},
    "Obo": {"img_num": 93, "baseline": 22.2, "ACSL": 83.3},
    "Squ": {"img_num": 97, "baseline": 29.1, "ACSL": 50.3},
    "Bin": {"img_num": 109, "baseline": 42.7, "ACSL": 61.5},
    "Ser": {"img_num": 106, "baseline": 40.2, "ACSL": 73.2},
}


def table6_frame() -> pd.DataFrame:
    """Table 6 as a DataFrame indexed by the paper's class abbreviation, with the AP gain."""
    frame = pd.DataFrame.from_dict(TABLE6, orient="index")
    frame.index.name = "class"
    frame["gain"] = frame["ACSL"] - frame["baseline"]
    return frame


# Table 7: "Comparison with other methods on Open Images" (ResNet50-FPN, 500 categories), AP@0.5 %.
TABLE7: dict[str, float] = {"Class Aware Sampling": 56.50, "Equalization Loss": 57.83, "ACSL": 61.70}


def table7_frame() -> pd.DataFrame:
    return pd.DataFrame({"AP": TABLE7}).rename_axis("method")
