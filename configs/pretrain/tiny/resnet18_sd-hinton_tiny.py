# SD, tiny ResNet-18 (tests, CPU), with the common (Hinton) distillation loss (1-a)·CE + a·T²·KL,
# a=0.9, instead of our default CE·(1 + 1/T) + KL. Same T = 3, schedule and teacher.
_base_ = './resnet18_sd_tiny.py'

model = dict(kd_form='hinton')
