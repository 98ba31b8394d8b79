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
             'configs/pretrain/resnet50_sd_8xb32_in1k.py',
             # optional arms a reviewer asks for, each 3 more pretrainings and 6 transfers:
             # about a cyclic run's cost (label smoothing, cosine), SD's (PS-KD), SD's plus one
             # weight update per step (EMA teacher)
             # 'configs/pretrain/resnet50_lbs-cyclic_8xb32_in1k.py',
             # 'configs/pretrain/resnet50_coslr_8xb32_in1k.py',
             # 'configs/pretrain/resnet50_pskd_8xb32_in1k.py',
             # 'configs/pretrain/resnet50_ema-teacher_8xb32_in1k.py',
             ],
    seeds=[0, 1, 2],
    options=['--amp', '--auto-scale-lr'])
transfer = dict(
    det=['configs/transfer/faster-rcnn_r50_fpn_1x_voc0712_sd.py'],
    seg=['configs/transfer/deeplabv3_r50-d8_4xb4-20k_voc12aug-512x512_sd.py'],
    seeds=[0],
    options=['--amp', '--auto-scale-lr'])
# processes (GPUs) per run, the recipes' own counts: one node per run
gpus = dict(pretrain=8, det=8, seg=4)
# Slurm (--launcher slurm): time limits per kind; a run longer than its limit checkpoints when
# warned (signal_seconds before the limit, enough for one epoch of the slowest run) and requeues
# itself. Optional: account, qos, mem (each once, or per kind as time is).
slurm = dict(partition='PARTITION', cpus_per_task=5, signal_seconds=1800,
             time=dict(pretrain='24:00:00', det='12:00:00', seg='12:00:00'))
