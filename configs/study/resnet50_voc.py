# The full-scale study (GPU users): ResNet-50 on ImageNet as the cyclic baseline, the CE-weight
# control and SD, 3 seeds each; every backbone fine-tuned for Faster R-CNN (VOC07+12) and
# DeepLabV3 (VOC12 + aug), one seed each. 9 pretrainings and 18 transfers: the report pairs the
# arms by seed (matched baselines, 95% intervals).
#     python tools/study.py configs/study/resnet50_voc.py --dry-run
#     python tools/study.py configs/study/resnet50_voc.py --launcher slurm
work_dir = 'work_dirs/study_resnet50_voc'
data = dict(pretrain='data/imagenet', det='data/VOCdevkit', seg='data/VOCdevkit/VOC2012')
pretrain = dict(
    configs=['configs/pretrain/resnet50_cyclic_8xb32_in1k.py',
             'configs/pretrain/resnet50_ceweight_8xb32_in1k.py',
             'configs/pretrain/resnet50_sd_8xb32_in1k.py'],
    seeds=[0, 1, 2],
    options=['--amp', '--auto-scale-lr'])
transfer = dict(
    det=['configs/transfer/faster-rcnn_r50_fpn_1x_voc0712_sd.py'],
    seg=['configs/transfer/deeplabv3_r50-d8_4xb4-20k_voc12aug-512x512_sd.py'],
    seeds=[0],
    options=['--amp', '--auto-scale-lr'])
# one node per run, the recipes' GPU counts
slurm = dict(partition='PARTITION', gpus=dict(pretrain=8, det=8, seg=4), cpus_per_task=5,
             time='72:00:00')
