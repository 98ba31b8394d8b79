# Tiny CPU version of deeplabv3_r50-d8_4xb4-20k_voc12aug-512x512_sd.py for tests and
# `make demo`: ResNet-18-D8 on the generated VOCdevkit (tools/make_tiny_data.py), 96 px crops,
# narrower heads, 100 iterations. Same splits (train + aug, tested on val), model, losses and
# metric as the full recipe.
_base_ = '../deeplabv3_r50-d8_4xb4-20k_voc12aug-512x512_sd.py'

data_root = 'data/tiny/VOCdevkit/VOC2012'
crop_size = (96, 96)
max_iters = 100

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(depth=18),
    decode_head=dict(in_channels=512, channels=128),
    auxiliary_head=dict(in_channels=256, channels=64))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(512, 128), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 128), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(datasets=[
        dict(dataset, data_root=data_root, pipeline=train_pipeline)
        for dataset in _base_.train_dataloader.dataset.datasets]))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=max_iters))

# This tiny recipe's lr and iterations are set for its own batch (the full recipe: 4 x 4): a run
# with another total batch is marked so in the report.
auto_scale_lr = dict(base_batch_size=4)
