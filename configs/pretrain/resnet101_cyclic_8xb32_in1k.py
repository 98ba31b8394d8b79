# Controlled baseline for SD, ResNet-101: mmpretrain's resnet101_8xb32_in1k differs from the
# ResNet-50 recipe only in depth, so this is the ResNet-50 cyclic baseline at depth 101.
_base_ = './resnet50_cyclic_8xb32_in1k.py'

model = dict(backbone=dict(depth=101))
