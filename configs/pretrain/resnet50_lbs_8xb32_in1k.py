# mmpretrain's label-smoothing recipe unchanged (step LR, 100 epochs), the reference for the
# label-smoothing arm on the cyclic schedule (resnet50_lbs-cyclic_8xb32_in1k.py): its backbone
# exported, the last 3 checkpoints kept.
_base_ = 'mmpretrain::resnet/resnet50_8xb32-lbs_in1k.py'

custom_imports = dict(imports=['sd_transfer.export'], allow_failed_imports=False)

custom_hooks = [dict(type='BackboneExportHook')]

default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
