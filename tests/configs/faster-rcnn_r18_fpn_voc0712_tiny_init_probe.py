# The tiny detector with a hook that records its weights as training starts.
_base_ = '../../configs/transfer/tiny/faster-rcnn_r18_fpn_voc0712_tiny.py'

custom_imports = dict(imports=['sd_transfer.transfer.metrics', 'probes'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='InitDigestHook')]
