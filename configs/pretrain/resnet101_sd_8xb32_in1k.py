# Snapshot distillation on ImageNet, ResNet-101: the cyclic baseline plus the teacher.
# T = 3 and the 'sd' loss form CE·(1 + 1/T) + KL (our defaults, see "SD settings" in
# docs/advanced_guides/sd_and_arms.md).
_base_ = './resnet101_cyclic_8xb32_in1k.py'

model = dict(type='SnapshotDistiller', temperature=3.0, kd_form='sd')

custom_hooks = [dict(type='SnapshotTeacherHook'), dict(type='BackboneExportHook')]
