# Snapshot distillation on ImageNet, ResNetV1c-50: the cyclic baseline plus the teacher.
_base_ = './resnetv1c50_cyclic_8xb32_in1k.py'

model = dict(type='SnapshotDistiller', temperature=3.0, kd_form='sd')

custom_hooks = [dict(type='SnapshotTeacherHook'), dict(type='BackboneExportHook')]
