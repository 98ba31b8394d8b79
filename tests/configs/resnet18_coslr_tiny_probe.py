# The tiny cosine arm with the probe hook (its learning rate at every iteration).
_base_ = '../../configs/pretrain/tiny/resnet18_coslr_tiny.py'

custom_imports = dict(imports=['sd_transfer.distill', 'sd_transfer.export', 'probes'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='BackboneExportHook'), dict(type='SDProbeHook')]
