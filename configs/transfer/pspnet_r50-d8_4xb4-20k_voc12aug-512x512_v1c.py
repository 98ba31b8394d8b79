# mmseg's pspnet R-50-D8 recipe on VOC12 train + SBD aug exactly as published -- ResNetV1c (deep
# stem), SyncBN on several GPUs -- except that the backbone starts from our deep-stem pretraining
# (or from the recipe's own default, OpenMMLab's open-mmlab://resnet50_v1c file, given to
# --backbone) instead of downloading it. Numbers from it sit next to mmseg's model zoo (76.78 mIoU).
_base_ = 'mmseg::pspnet/pspnet_r50-d8_4xb4-20k_voc12aug-512x512.py'

custom_imports = dict(imports=['sd_transfer.transfer.metrics'], allow_failed_imports=False)

model = dict(pretrained=None, backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=None)))

# The test run also reports the IoU of every class (mmseg's IoUMetric only logs them).
test_evaluator = dict(type='IoUMetricPerClass')

# The recipe's lr is for 4 GPUs x 4 images (mmseg's recipes have no auto_scale_lr).
auto_scale_lr = dict(enable=False, base_batch_size=16)
