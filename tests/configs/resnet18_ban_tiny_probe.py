# A tiny born-again generation with the probe hook (it can SIGKILL the run: SD_PROBE_KILL_AT_ITER).
_base_ = '../../configs/pretrain/tiny/resnet18_ban_tiny.py'

custom_imports = dict(imports=['sd_transfer.distill', 'sd_transfer.export', 'probes'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='BackboneExportHook'), dict(type='SDProbeHook')]
