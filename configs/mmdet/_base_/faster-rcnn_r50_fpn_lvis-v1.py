# The LVIS v0.5 recipe on LVIS v1 (1203 classes; image paths from `coco_url`, under data/coco/).
_base_ = "./faster-rcnn_r50_fpn_lvis-v0.5.py"

train_ann_file = "data/lvis_v1/annotations/lvis_v1_train.json"
val_ann_file = "data/lvis_v1/annotations/lvis_v1_val.json"

model = dict(roi_head=dict(bbox_head=dict(num_classes=1203)))
train_dataloader = dict(dataset=dict(
    type="LVISV1Dataset", ann_file="lvis_v1/annotations/lvis_v1_train.json", data_prefix=dict(img="coco/")))
val_dataloader = dict(dataset=dict(
    type="LVISV1Dataset", ann_file="lvis_v1/annotations/lvis_v1_val.json", data_prefix=dict(img="coco/")))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=val_ann_file)
test_evaluator = val_evaluator
