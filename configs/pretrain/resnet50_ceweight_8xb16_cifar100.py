# Control arm for SD, ResNet-50 on CIFAR-100: SD exactly (same schedule, the teacher hook swaps
# snapshots, CE weighted 1 + 1/T from cycle 2) except that the distillation term is off, so no
# teacher forward runs. SD minus this arm isolates what the teacher adds beyond the CE reweighting.
_base_ = './resnet50_sd_8xb16_cifar100.py'

model = dict(kd_weight=0.0)
