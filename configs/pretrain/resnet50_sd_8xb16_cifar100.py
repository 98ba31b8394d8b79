# Snapshot distillation on CIFAR-100: the cyclic baseline plus the teacher.
_base_ = './resnet50_cyclic_8xb16_cifar100.py'

model = dict(type='SnapshotDistiller', temperature=3.0, kd_form='sd')

custom_hooks = [dict(type='SnapshotTeacherHook'), dict(type='BackboneExportHook')]
