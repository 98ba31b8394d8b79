# Faster R-CNN R-50-FPN, 1x on VOC07+12 trainval, tested on VOC07 test (11-point mAP): mmdet's
# recipe unchanged except that the backbone starts from our pretrained weights (and the metric
# class, below).
# Run with tools/transfer.py det CONFIG --backbone FILE: it verifies FILE and fills init_cfg.
_base_ = 'mmdet::pascal_voc/faster-rcnn_r50_fpn_1x_voc0712.py'

custom_imports = dict(imports=['sd_transfer.transfer.metrics'], allow_failed_imports=False)

model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=None)))

# The test reports what VOC transfer papers do: AP50 (VOC07 11-point, the headline), AP over IoU
# 0.50:0.95 (mmdet's 'mAP' given these thresholds; also returned as 'AP') and AP75, and the AP of
# every class (mmdet's VOCMetric only logs them).
test_evaluator = dict(type='VOCMetricPerClass',
                      iou_thrs=[0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])
# Validation keeps mmdet's metric settings (AP50, 11-point) in our metric class: it adds the
# per-class AP50 and computes in this process, without the process pool mmdet's eval_map forks
# (see sd_transfer/transfer/metrics.py).
val_evaluator = dict(type='VOCMetricPerClass')
