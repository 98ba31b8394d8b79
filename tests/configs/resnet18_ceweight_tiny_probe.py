# The tiny control arm (SD without its KD term) with the probe hook.
_base_ = './resnet18_sd_tiny_probe.py'

model = dict(kd_weight=0.0)
