# mmpretrain's cosine recipe unchanged (one cosine over 100 epochs, no restarts, no teacher): does
# the cyclic schedule itself cost accuracy? SD's gain over the cyclic baseline means little if the
# cyclic baseline is below this one. Its backbone exported, the last 3 checkpoints kept.
_base_ = 'mmpretrain::resnet/resnet50_8xb32-coslr_in1k.py'

custom_imports = dict(imports=['sd_transfer.export'], allow_failed_imports=False)

custom_hooks = [dict(type='BackboneExportHook')]

default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
