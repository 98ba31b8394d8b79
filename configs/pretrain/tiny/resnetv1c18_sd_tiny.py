# Tiny deep-stem (ResNetV1c) SD for tests: the tiny SD set-up with V1c's stem.
_base_ = './resnet18_sd_tiny.py'

model = dict(backbone=dict(type='ResNetV1c'))
