# The LVIS v0.5 baseline scaled down to the `smoke` synthetic benchmark for a bounded CPU run
# (scripts/mmdet_check.sh; `acsl data generate --profile smoke --root data` writes the data): 12 classes,
# 96 px images shown at 192 px, 2 images per step, fewer proposals and RoIs, a bounded number of
# iterations. No pretrained weight can be fetched offline, so the ResNet-50 starts from scratch with its
# batch norms in training mode and every stage trainable.
_base_ = "../faster-rcnn_r50_fpn_softmax_1x_lvis-v0.5.py"

data_root = "data/synthetic-smoke-seed0/"
train_ann_file = data_root + "annotations/train.json"
val_ann_file = data_root + "annotations/val.json"
max_iters = 60

model = dict(
    backbone=dict(init_cfg=None, frozen_stages=-1, norm_eval=False),
    roi_head=dict(bbox_head=dict(num_classes=12)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=300, max_per_img=100), rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100), rcnn=dict(max_per_img=100)),
)
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(type="Resize", scale=(192, 192), keep_ratio=True),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PackDetInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=(192, 192), keep_ratio=True),
    dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file="annotations/train.json", data_prefix=dict(img="images/train/"),
                 filter_cfg=dict(filter_empty_gt=True, min_size=0), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file="annotations/val.json", data_prefix=dict(img="images/val/"),
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=val_ann_file)
test_evaluator = val_evaluator

train_cfg = dict(_delete_=True, type="IterBasedTrainLoop", max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [dict(type="LinearLR", start_factor=1.0 / 3, by_epoch=False, begin=0, end=10)]
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(by_epoch=False, interval=max_iters),
                     visualization=dict(draw=False))
log_processor = dict(by_epoch=False, window_size=1)
load_from = None
