_base_ = './pspnet_r50-d8_4xb4-20k_voc12aug-512x512_v1c.py'

model = dict(backbone=dict(depth=101))
