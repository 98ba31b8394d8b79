# Controlled baseline for SD on CIFAR-100 (the paper's other benchmark): mmpretrain's ResNet-50
# CIFAR-100 recipe with 4 equal cosine cycles over its 200 epochs and no teacher.
_base_ = 'mmpretrain::resnet/resnet50_8xb16_cifar100.py'

custom_imports = dict(imports=['sd_transfer.distill', 'sd_transfer.export'],
                      allow_failed_imports=False)

param_scheduler = dict(
    _delete_=True,
    type='CosineRestartLR',
    periods=[50, 50, 50, 50],
    restart_weights=[1, 1, 1, 1],
    eta_min=0,
    by_epoch=True,
    convert_to_iter_based=True)

custom_hooks = [dict(type='BackboneExportHook')]

# Keep the last 3 full checkpoints (model, optimizer, teacher: about 0.3 GB each at ResNet-50),
# enough for --resume and its fallback past a truncated file; every cycle's backbone is kept by
# the export hook. The recipe keeps all epochs' (about 30 GB at ResNet-50).
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
