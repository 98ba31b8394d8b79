# Tiny CPU version of the cyclic baseline for tests and `make demo`: ResNet-18 on the generated
# ImageNet-layout data (tools/make_tiny_data.py), 48 px crops, 4 cycles of 2 epochs.
_base_ = 'mmpretrain::resnet/resnet18_8xb32_in1k.py'

custom_imports = dict(imports=['sd_transfer.distill', 'sd_transfer.export'],
                      allow_failed_imports=False)

data_root = 'data/tiny/imagenet'
num_classes = 10

model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=48, crop_ratio_range=(0.5, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=56, edge='short'),
    dict(type='CenterCrop', crop_size=48),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32, num_workers=1, persistent_workers=True,
    dataset=dict(data_root=data_root, metainfo=dict(classes=None), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64, num_workers=1, persistent_workers=True,
    dataset=dict(data_root=data_root, metainfo=dict(classes=None), pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=0.05))
param_scheduler = dict(
    _delete_=True,
    type='CosineRestartLR',
    periods=[2, 2, 2, 2],
    restart_weights=[1, 1, 1, 1],
    eta_min=0,
    by_epoch=True,
    convert_to_iter_based=True)
train_cfg = dict(max_epochs=8)

default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(interval=1, max_keep_ckpts=2))
custom_hooks = [dict(type='BackboneExportHook')]

# This tiny recipe's lr is set for its own batch (mmpretrain's ResNet-18 recipe: 8 x 32): a run
# with another total batch is marked so in the report.
auto_scale_lr = dict(base_batch_size=32)
