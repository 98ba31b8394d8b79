# Snapshot distillation on CIFAR-100: the cyclic baseline plus the teacher.
_base_ = './resnet50_cyclic_8xb16_cifar100.py'

model = dict(type='SnapshotDistiller', temperature=3.0, ce_weight=1 + 1 / 3, kd_weight=1.0)

custom_hooks = [dict(type='SnapshotTeacherHook'), dict(type='BackboneExportHook')]
