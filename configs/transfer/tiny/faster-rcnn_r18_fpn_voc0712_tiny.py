# Tiny CPU version of faster-rcnn_r50_fpn_1x_voc0712_sd.py for tests and `make demo`: ResNet-18
# on the generated VOCdevkit (tools/make_tiny_data.py) at its 128 px, a 64-channel FPN, fewer
# RoIs, 200 iterations of batch 2 at the recipe's LR. Same data splits, detector, losses
# and metric as the full recipe.
_base_ = '../faster-rcnn_r50_fpn_1x_voc0712_sd.py'

data_root = 'data/tiny/VOCdevkit/'
max_iters = 200

channels = 64
model = dict(
    backbone=dict(depth=18),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=channels),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(in_channels=channels, fc_out_channels=256)),
    train_cfg=dict(rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(dataset=dict(datasets=[
        dict(dataset, data_root=data_root, pipeline=train_pipeline)
        for dataset in _base_.train_dataloader.dataset.dataset.datasets])))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

# Warm-up (as mmdet's 1x schedules have) and gradient clipping: at this small batch a pretrained
# backbone otherwise diverges in the first hundred iterations.
optim_wrapper = dict(optimizer=dict(lr=0.01), clip_grad=dict(max_norm=35, norm_type=2))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[max_iters * 3 // 4], gamma=0.1)
]
default_hooks = dict(logger=dict(interval=20),
                     checkpoint=dict(by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)

# This tiny recipe's lr and iterations are set for its own batch (the full recipe: 8 x 2): a run
# with another total batch is marked so in the report.
auto_scale_lr = dict(base_batch_size=2)
