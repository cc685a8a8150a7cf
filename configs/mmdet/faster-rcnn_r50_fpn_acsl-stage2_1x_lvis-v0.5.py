# Stage 2 with ACSL (paper §4.2, Table 2, xi = 0.7): every weight of the stage-1 baseline loaded, nothing
# re-initialised, only the classifier's final layer trained (acsl.TrainOnlyHook), 12 epochs at lr 0.02.
# Train the baseline first (faster-rcnn_r50_fpn_softmax_1x_lvis-v0.5.py), or point load_from elsewhere.
_base_ = "./_base_/faster-rcnn_r50_fpn_lvis-v0.5.py"

model = dict(roi_head=dict(bbox_head=dict(
    # _delete_: the base's CrossEntropyLoss options (use_sigmoid ...) are no options of ours.
    loss_cls=dict(_delete_=True, type="acsl.ACSL", ann_file={{_base_.train_ann_file}}, xi=0.7))))
custom_hooks = [dict(type="acsl.TrainOnlyHook", trainable=["roi_head.bbox_head.fc_cls"])]
# DDP is built before the hook freezes the other parameters.
model_wrapper_cfg = dict(type="MMDistributedDataParallel", find_unused_parameters=True)
optim_wrapper = dict(optimizer=dict(lr=0.02))
load_from = "work_dirs/faster-rcnn_r50_fpn_softmax_1x_lvis-v0.5/epoch_12.pth"
