# Faster R-CNN R-50-FPN, 1x on VOC07+12 trainval, tested on VOC07 test (11-point mAP): mmdet's
# recipe unchanged except that the backbone starts from our pretrained weights.
# Run with tools/transfer.py det CONFIG --backbone FILE: it verifies FILE and fills init_cfg.
_base_ = 'mmdet::pascal_voc/faster-rcnn_r50_fpn_1x_voc0712.py'

custom_imports = dict(imports=['sd_transfer.transfer.metrics'], allow_failed_imports=False)

model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=None)))

# The test run also reports the AP of every class (mmdet's VOCMetric only logs them).
test_evaluator = dict(type='VOCMetricPerClass')
