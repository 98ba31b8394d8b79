# The tiny SD config with a probe hook that records swaps, learning rates and teacher use, and a
# last transform that records what each training sample's random streams give after its
# augmentation (it changes no image).
_base_ = '../../configs/pretrain/tiny/resnet18_sd_tiny.py'

custom_imports = dict(imports=['sd_transfer.distill', 'sd_transfer.export', 'probes'],
                      allow_failed_imports=False)
train_dataloader = dict(
    dataset=dict(pipeline=[*_base_.train_pipeline, dict(type='RandomDrawsProbe')]))
custom_hooks = [
    dict(type='SnapshotTeacherHook'),
    dict(type='BackboneExportHook'),
    dict(type='SDProbeHook'),
]
