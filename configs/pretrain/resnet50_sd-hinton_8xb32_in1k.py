# SD, ResNet-50 on ImageNet, with the common (Hinton) distillation loss (1-a)·CE + a·T²·KL, a=0.9,
# instead of our default CE·(1 + 1/T) + KL. Same T = 3, schedule and teacher.
_base_ = './resnet50_sd_8xb32_in1k.py'

model = dict(kd_form='hinton')
