# PS-KD on SD's cyclic CIFAR-100 schedule (see resnet50_pskd_8xb32_in1k.py): the previous epoch's
# snapshot teaches, target (1 - a_t)·y + a_t·softmax(teacher), a_t rising linearly to 0.8, T = 1.
_base_ = './resnet50_sd_8xb16_cifar100.py'

model = dict(kd_form='pskd', alpha=0.8, temperature=1.0)

custom_hooks = [dict(type='SnapshotTeacherHook', refresh='epoch'),
                dict(type='BackboneExportHook')]
