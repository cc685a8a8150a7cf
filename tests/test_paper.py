"""The paper's numbers as transcribed in ``acsl.paper`` agree with what the paper's own text says of them."""

from __future__ import annotations

import pytest

from acsl import paper


def test_table3_gains_match_the_papers_text():
    t = paper.TABLE3
    gain = {key[:2]: round(t[key[:2] + ("ACSL",)]["mAP"] - t[key[:2] + ("baseline",)]["mAP"], 2) for key in t}
    # §4.4: "+5.13% mAP" (R101), "4.23% higher" (X101), Cascade R101 29.71 "+4.57", Cascade X101 31.47 "+4.33"
    assert gain == {("Faster R-CNN", "ResNet-101"): 5.13, ("Faster R-CNN", "ResNeXt-101 64x4d"): 4.23,
                    ("Cascade R-CNN", "ResNet-101"): 4.57, ("Cascade R-CNN", "ResNeXt-101 64x4d"): 4.33}
    # "16.11% APr improvements for ResNet101"
    apr = t[("Faster R-CNN", "ResNet-101", "ACSL")]["APr"] - t[("Faster R-CNN", "ResNet-101", "baseline")]["APr"]
    assert apr == pytest.approx(16.11)
    assert set(paper.table3_frame().columns) == set(paper.TABLE3_COLUMNS)


def test_table2_best_xi_is_0_7_with_26_36_map_as_the_text_says():
    acsl_rows = paper.table2_frame().xs("ACSL", level="method")
    assert acsl_rows["mAP"].idxmax() == 0.7 and acsl_rows["mAP"].max() == 26.36
    assert round(26.36 - paper.TABLE2[("baseline (1x)", None)]["mAP"], 2) == 5.18  # "surpassing ... by 5.18%"


def test_table1_best_dividing_lines_lie_in_50_to_500():
    frame = paper.table1_frame()
    assert frame["mAP"].idxmax() == 500 and frame["APr"].idxmax() == 50  # "a proper range (50~500)"
    assert list(frame.index) == [5, 50, 500, 5000]


def test_table4_acsl_rows_are_tables_2_and_3s_numbers():
    t4, t2, t3 = paper.TABLE4, paper.TABLE2, paper.TABLE3
    for column in ("mAP", "APr", "APc", "APf"):
        assert t4[("ACSL", "ResNet-50")][column] == t2[("ACSL", 0.7)][column]
        for backbone in ("ResNet-101", "ResNeXt-101 64x4d"):
            assert t4[("ACSL", backbone)][column] == t3[("Faster R-CNN", backbone, "ACSL")][column]
    frame = paper.table4_frame()
    assert frame.loc[("CBL", "ResNet-50"), "AP50"] != frame.loc[("CBL", "ResNet-50"), "AP50"]  # "−" is NaN
    # "ACSL obtains the best ... APr" among the single-scale R50 models
    r50 = frame.xs("ResNet-50", level="backbone")
    assert r50["APr"].idxmax() == "ACSL" and r50["mAP"].idxmax() == "ACSL"
