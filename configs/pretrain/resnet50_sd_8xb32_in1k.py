# Snapshot distillation on ImageNet, ResNet-50: the cyclic baseline plus the teacher.
# T = 3, CE weight 1 + 1/T, KD weight 1 (our defaults, see README "SD settings").
_base_ = './resnet50_cyclic_8xb32_in1k.py'

model = dict(type='SnapshotDistiller', temperature=3.0, ce_weight=1 + 1 / 3, kd_weight=1.0)

custom_hooks = [dict(type='SnapshotTeacherHook'), dict(type='BackboneExportHook')]
