# Controlled baseline for SD, ResNetV1c-101: mmpretrain's resnetv1c101_8xb32_in1k differs from the
# V1c-50 recipe only in depth, so this is the V1c-50 cyclic baseline at depth 101.
_base_ = './resnetv1c50_cyclic_8xb32_in1k.py'

model = dict(backbone=dict(depth=101))
