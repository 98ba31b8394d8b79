# mmseg's fcn R-50-D8 recipe on VOC12 train + SBD aug (20k iterations, 512x512 crops, tested
# on VOC12 val), except for the backbone: our plain ResNet (mmseg's ResNetV1c has a deep stem
# our pretraining lacks), started from our weights instead of open-mmlab://resnet50_v1c.
# Run with tools/transfer.py seg CONFIG --backbone FILE: it verifies FILE, fills init_cfg and
# picks SyncBN (several GPUs) or BN (one process).
_base_ = 'mmseg::fcn/fcn_r50-d8_4xb4-20k_voc12aug-512x512.py'

custom_imports = dict(imports=['sd_transfer.transfer.metrics'], allow_failed_imports=False)

model = dict(
    pretrained=None,
    backbone=dict(type='ResNet', init_cfg=dict(type='Pretrained', checkpoint=None)))

# The test run also reports the IoU of every class (mmseg's IoUMetric only logs them).
test_evaluator = dict(type='IoUMetricPerClass')

# mmseg's recipes have no auto_scale_lr; their lr is for 4 GPUs x 4 images. tools/transfer.py
# --auto-scale-lr scales it to the batch actually used.
auto_scale_lr = dict(enable=False, base_batch_size=16)
