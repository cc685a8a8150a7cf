# EQLv2 (Tan et al., CVPR 2021) end to end, as acsl's Table 4 runs it: the stage-1 recipe with the loss
# swapped. Its sigmoid classifier starts from the prior 0.001 on every output (the authors' bbox head):
# acsl.EQLv2 sets that bias itself when mmengine initialises the head (MMDetLoss.init_weights).
_base_ = "./_base_/faster-rcnn_r50_fpn_lvis-v0.5.py"

model = dict(roi_head=dict(bbox_head=dict(
    loss_cls=dict(_delete_=True, type="acsl.EQLv2", ann_file={{_base_.train_ann_file}}))))
