# Control arm for SD, ResNetV1c-101: SD with its distillation term off (see
# resnet50_ceweight_8xb32_in1k.py).
_base_ = './resnetv1c101_sd_8xb32_in1k.py'

model = dict(kd_weight=0.0)
