# Tiny CPU version of snapshot distillation: the tiny cyclic baseline plus the teacher.
_base_ = './resnet18_cyclic_tiny.py'

model = dict(type='SnapshotDistiller', temperature=3.0, kd_form='sd')

custom_hooks = [dict(type='SnapshotTeacherHook'), dict(type='BackboneExportHook')]
