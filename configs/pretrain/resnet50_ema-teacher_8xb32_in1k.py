# SD with a mean teacher: an exponential moving average of the student (momentum 0.999 per step,
# BN buffers copied) instead of each cycle's last snapshot, teaching from cycle 2 on with SD's
# loss. It isolates "snapshot vs average"; it costs one weight update per step besides the
# teacher forward.
_base_ = './resnet50_sd_8xb32_in1k.py'

custom_hooks = [dict(type='SnapshotTeacherHook', refresh='ema', momentum=0.999),
                dict(type='BackboneExportHook')]
