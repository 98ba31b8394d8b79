# PS-KD (Kim et al., ICCV 2021) on SD's cyclic schedule: the teacher is the snapshot of the end of
# the previous epoch (not of the cycle), and the target (1 - a_t)·y + a_t·softmax(teacher) with
# a_t rising linearly to 0.8, T = 1. (The paper keeps each sample's prediction of the previous
# epoch; a snapshot predicting the current batch is the one-hook variant of SD.)
_base_ = './resnet50_sd_8xb32_in1k.py'

model = dict(kd_form='pskd', alpha=0.8, temperature=1.0)

custom_hooks = [dict(type='SnapshotTeacherHook', refresh='epoch'),
                dict(type='BackboneExportHook')]
