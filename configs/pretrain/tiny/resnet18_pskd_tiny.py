# PS-KD on the tiny cyclic schedule (tests, CPU): the previous epoch's snapshot teaches, target
# (1 - a_t)·y + a_t·softmax(teacher), a_t rising linearly to 0.8, T = 1.
_base_ = './resnet18_sd_tiny.py'

model = dict(kd_form='pskd', alpha=0.8, temperature=1.0)

custom_hooks = [dict(type='SnapshotTeacherHook', refresh='epoch'),
                dict(type='BackboneExportHook')]
