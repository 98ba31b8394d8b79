# Born-again networks on CIFAR-100: every generation is mmpretrain's ResNet-50 CIFAR-100 recipe
# unchanged (step LR, 200 epochs); from the second on the previous generation's final checkpoint
# teaches it (tools/born_again.py passes --teacher) with SD's loss.
_base_ = 'mmpretrain::resnet/resnet50_8xb16_cifar100.py'

custom_imports = dict(imports=['sd_transfer.distill', 'sd_transfer.export'],
                      allow_failed_imports=False)

model = dict(type='SnapshotDistiller', temperature=3.0)

custom_hooks = [dict(type='BackboneExportHook')]

# Keep the last 3 full checkpoints, as the cyclic configs do.
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
