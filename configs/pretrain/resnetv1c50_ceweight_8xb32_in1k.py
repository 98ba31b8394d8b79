# Control arm for SD, ResNetV1c-50: SD with its distillation term off (see
# resnet50_ceweight_8xb32_in1k.py).
_base_ = './resnetv1c50_sd_8xb32_in1k.py'

model = dict(kd_weight=0.0)
