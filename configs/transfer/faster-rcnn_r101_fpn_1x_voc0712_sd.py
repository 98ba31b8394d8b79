_base_ = './faster-rcnn_r50_fpn_1x_voc0712_sd.py'

model = dict(backbone=dict(depth=101))
