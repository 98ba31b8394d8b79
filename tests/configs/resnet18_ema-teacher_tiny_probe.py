# The tiny ema-teacher arm with the probe hook (teacher, losses, weights at every iteration).
_base_ = '../../configs/pretrain/tiny/resnet18_ema-teacher_tiny.py'

custom_imports = dict(imports=['sd_transfer.distill', 'sd_transfer.export', 'probes'],
                      allow_failed_imports=False)
custom_hooks = [
    dict(type='SnapshotTeacherHook', refresh='ema', momentum=0.99),
    dict(type='BackboneExportHook'),
    dict(type='SDProbeHook'),
]
