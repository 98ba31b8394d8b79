# SD with a mean teacher on the tiny data (tests, CPU): an exponential moving average of the
# student teaches from cycle 2 on. Momentum 0.99: the tiny run has 19 steps an epoch.
_base_ = './resnet18_sd_tiny.py'

custom_hooks = [dict(type='SnapshotTeacherHook', refresh='ema', momentum=0.99),
                dict(type='BackboneExportHook')]
