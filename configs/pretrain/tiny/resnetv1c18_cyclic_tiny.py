# Tiny deep-stem (ResNetV1c) cyclic baseline for tests: the tiny ResNet-18 set-up with V1c's stem.
_base_ = './resnet18_cyclic_tiny.py'

model = dict(backbone=dict(type='ResNetV1c'))
