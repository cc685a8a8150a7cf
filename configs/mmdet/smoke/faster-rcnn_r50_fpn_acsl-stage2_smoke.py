# ACSL stage 2 (xi = 0.7) on the smoke baseline: every weight loaded (scripts/mmdet_check.sh sets
# load_from to the baseline's last checkpoint), only the classifier's final layer trained. The paper's
# lr 0.02 is for 16 images per step; at 2 the loss swings from step to step, so 0.005 here.
_base_ = "./faster-rcnn_r50_fpn_softmax_smoke.py"

max_iters = 40
model = dict(
    backbone=dict(norm_eval=True),  # the batch norms keep the statistics stage 1 learnt
    roi_head=dict(bbox_head=dict(
        loss_cls=dict(_delete_=True, type="acsl.ACSL", ann_file={{_base_.train_ann_file}}, xi=0.7))))
custom_hooks = [dict(type="acsl.TrainOnlyHook", trainable=["roi_head.bbox_head.fc_cls"])]
model_wrapper_cfg = dict(type="MMDistributedDataParallel", find_unused_parameters=True)
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=0.005))
default_hooks = dict(checkpoint=dict(interval=max_iters))
