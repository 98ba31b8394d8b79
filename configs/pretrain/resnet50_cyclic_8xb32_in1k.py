# Controlled baseline for SD: mmpretrain's ResNet-50 recipe with SD's cyclic learning rate
# (4 equal cosine cycles over the recipe's 100 epochs) and no teacher. The only difference to
# resnet50_sd_8xb32_in1k.py is the teacher.
_base_ = 'mmpretrain::resnet/resnet50_8xb32_in1k.py'

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

# Keep the last 3 full checkpoints (model, optimizer, teacher: about 0.3 GB each at ResNet-50),
# enough for --resume and its fallback past a truncated file; every cycle's backbone is kept by
# the export hook. The recipe keeps all epochs' (about 30 GB at ResNet-50).
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
