# The tiny DeepLabV3 on a deep-stem backbone (ResNetV1c-18, as mmseg's recipes use), for tests of
# deep-stem exports: deeplabv3_r18-d8_voc12aug_tiny.py with V1c's stem.
_base_ = './deeplabv3_r18-d8_voc12aug_tiny.py'

model = dict(backbone=dict(type='ResNetV1c'))
