# Controlled baseline for SD on mmpretrain's ResNetV1d-50 (deep stem and average-pool downsampling,
# for our V1d detectors): its recipe with SD's cyclic learning rate and no teacher -- the same
# additions as resnet50_cyclic_8xb32_in1k.py makes to the ResNet-50 recipe.
_base_ = 'mmpretrain::resnet/resnetv1d50_8xb32_in1k.py'

custom_imports = dict(imports=['sd_transfer.distill', 'sd_transfer.export'],
                      allow_failed_imports=False)

param_scheduler = dict(
    _delete_=True,
    type='CosineRestartLR',
    periods=[25, 25, 25, 25],
    restart_weights=[1, 1, 1, 1],
    eta_min=0,
    by_epoch=True,
    convert_to_iter_based=True)

custom_hooks = [dict(type='BackboneExportHook')]

# Keep the last 3 full checkpoints (see resnet50_cyclic_8xb32_in1k.py).
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
