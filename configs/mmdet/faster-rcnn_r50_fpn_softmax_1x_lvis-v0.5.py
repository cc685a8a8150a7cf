# Stage 1, the paper's baseline (Table 2): softmax cross-entropy, the whole detector, 12 epochs at lr 0.01.
_base_ = "./_base_/faster-rcnn_r50_fpn_lvis-v0.5.py"
