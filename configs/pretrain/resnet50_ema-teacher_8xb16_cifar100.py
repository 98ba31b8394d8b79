# SD with a mean teacher on CIFAR-100 (see resnet50_ema-teacher_8xb32_in1k.py): an exponential
# moving average of the student (momentum 0.999 per step) teaches from cycle 2 on.
_base_ = './resnet50_sd_8xb16_cifar100.py'

custom_hooks = [dict(type='SnapshotTeacherHook', refresh='ema', momentum=0.999),
                dict(type='BackboneExportHook')]
