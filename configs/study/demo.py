# `make demo`: the three ImageNet arms on the generated data (tools/make_tiny_data.py), one seed,
# each backbone transferred to VOC detection and segmentation, then the report.
work_dir = 'work_dirs/demo'
data = dict(pretrain='data/tiny/imagenet', det='data/tiny/VOCdevkit',
            seg='data/tiny/VOCdevkit/VOC2012')
pretrain = dict(
    configs=['configs/pretrain/tiny/resnet18_cyclic_tiny.py',
             'configs/pretrain/tiny/resnet18_ceweight_tiny.py',
             'configs/pretrain/tiny/resnet18_sd_tiny.py'],
    seeds=[0],
    options=[])
transfer = dict(
    det=['configs/transfer/tiny/faster-rcnn_r18_fpn_voc0712_tiny.py'],
    seg=['configs/transfer/tiny/deeplabv3_r18-d8_voc12aug_tiny.py'],
    seeds=[0],
    options=[])
