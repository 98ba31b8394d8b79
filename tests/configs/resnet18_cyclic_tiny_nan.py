# The tiny cyclic config with a hook that can poison the weights (SD_PROBE_NAN_AT_ITER).
_base_ = '../../configs/pretrain/tiny/resnet18_cyclic_tiny.py'

custom_imports = dict(imports=['sd_transfer.distill', 'sd_transfer.export', 'probes'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='BackboneExportHook'), dict(type='NaNInjectionHook')]
