# SD, ResNet-50 on CIFAR-100, with the common (Hinton) distillation loss (1-a)·CE + a·T²·KL, a=0.9,
# instead of our default CE·(1 + 1/T) + KL. Same T = 3, schedule and teacher.
_base_ = './resnet50_sd_8xb16_cifar100.py'

model = dict(kd_form='hinton')
