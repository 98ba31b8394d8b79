# The tiny detector with the probe hook: losses at every iteration, SIGKILL at
# SD_PROBE_KILL_AT_ITER.
_base_ = '../../configs/transfer/tiny/faster-rcnn_r18_fpn_voc0712_tiny.py'

custom_imports = dict(imports=['sd_transfer.transfer.metrics', 'probes'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='SDProbeHook')]
