"""Numbers that the authors of the methods after ACSL publish, transcribed with their setting, for the
beyond-the-paper notebook (``notebooks/beyond_after_acsl.ipynb``). Never ours: reports place them beside
the numbers our runs produce.

Each comes from the authors' own repository (the file and commit in ``source``). They differ from each other and
from ours in the LVIS version, the detector (Mask R-CNN, one-stage), the schedule, the sampler (RFS) and whether
AP is of boxes or masks (``kind``), so a row is a reference point for its method, not a row of one table. A
column the source does not give stays empty. DropLoss's and NorCal's repositories publish no numbers; ACSL's row
is its paper's (Table 4, LVIS v0.5, Faster R-CNN R50-FPN, boxes).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .paper import TABLE4

PUBLISHED_COLUMNS = ("mAP", "APr", "APc", "APf")


@dataclass(frozen=True)
class Published:
    """One published result: ``values`` over ``PUBLISHED_COLUMNS`` (None: not given), in percent."""

    method: str
    setting: str
    kind: str  # "box" or "mask"
    source: str
    values: tuple[float | None, float | None, float | None, float | None]


_ACSL = TABLE4[("ACSL", "ResNet-50")]

PUBLISHED: dict[str, Published] = {p.method: p for p in (
    Published("ACSL", "LVIS v0.5, Faster R-CNN R50-FPN 1x + 12 epochs of stage 2", "box",
              "the paper, Table 4", (_ACSL["mAP"], _ACSL["APr"], _ACSL["APc"], _ACSL["APf"])),
    Published("EQLv2", "LVIS v1, Mask R-CNN R50-FPN 1x, multi-scale, no RFS", "mask",
              "tztztztztz/eqlv2 README.md (907fad9), \"Pretrained Models on LVIS\"", (23.7, 14.9, 22.8, 28.6)),
    Published("Seesaw", "LVIS v1, Mask R-CNN R50-FPN 2x, multi-scale, random sampler", "box",
              "open-mmlab/mmdetection configs/seesaw_loss/README.md (10e91fd)", (25.6, None, None, None)),
    Published("ECM", "LVIS v1, Mask R-CNN R50 1x, RFS, normed classifier and mask head", "box",
              "janghyuncho/ECM-Loss README.md (a637240)", (26.9, None, None, None)),
    Published("GOL", "LVIS v1, Mask R-CNN R50 2x, RFS, with DropLoss, normed mask head", "mask",
              "kostas1515/GOL README.md (70026b7), row GOL_r50_v1", (27.7, 21.4, 27.7, 30.4)),
    Published("EFL", "LVIS v1, one-stage RetinaNet-style R50 with an IoU branch, 24 epochs, RFS", "box",
              "ModelTC/United-Perception benchmark/equalized_focal_loss.md (52aaeb9)", (27.5, 20.2, 26.1, 32.4)),
)}


def published_frame(methods: list[str] | None = None) -> pd.DataFrame:
    """The published rows of ``methods`` (all when None) indexed by method: ``PUBLISHED_COLUMNS``, then
    ``AP of`` (box or mask), ``setting`` and ``source``; a method without a published row has none."""
    rows = [{"method": p.method, **dict(zip(PUBLISHED_COLUMNS, p.values, strict=True)), "AP of": p.kind,
             "setting": p.setting, "source": p.source}
            for name, p in PUBLISHED.items() if methods is None or name in methods]
    frame = pd.DataFrame(rows, columns=["method", *PUBLISHED_COLUMNS, "AP of", "setting", "source"])
    return frame.set_index("method").astype({c: float for c in PUBLISHED_COLUMNS})
