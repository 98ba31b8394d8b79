# faster-rcnn_r50_fpn_1x_voc0712_sd.py with a ResNetV1d-50 backbone (deep stem, average-pool
# downsampling) for V1d pretrainings (configs/pretrain/resnetv1d*).
_base_ = './faster-rcnn_r50_fpn_1x_voc0712_sd.py'

model = dict(backbone=dict(type='ResNetV1d'))
