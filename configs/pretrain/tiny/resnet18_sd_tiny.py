# Tiny CPU version of snapshot distillation: the tiny cyclic baseline plus the teacher.
_base_ = './resnet18_cyclic_tiny.py'

model = dict(type='SnapshotDistiller', temperature=3.0, ce_weight=1 + 1 / 3, kd_weight=1.0)

custom_hooks = [dict(type='SnapshotTeacherHook'), dict(type='BackboneExportHook')]
