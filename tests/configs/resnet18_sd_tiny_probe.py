# The tiny SD config with a probe hook that records swaps, learning rates and teacher use.
_base_ = '../../configs/pretrain/tiny/resnet18_sd_tiny.py'

custom_imports = dict(imports=['sd_transfer.distill', 'sd_transfer.export', 'probes'],
                      allow_failed_imports=False)
custom_hooks = [
    dict(type='SnapshotTeacherHook'),
    dict(type='BackboneExportHook'),
    dict(type='SDProbeHook'),
]
