# Born-again networks (Furlanello et al. 2018), the method SD claims to match in one run: every
# generation is mmpretrain's ResNet-50 recipe unchanged (step LR, 100 epochs), and from the
# second on the previous generation's final checkpoint teaches it (tools/born_again.py passes
# --teacher) with SD's loss. Generation 1 has no teacher: plain CE, the upstream recipe itself.
_base_ = 'mmpretrain::resnet/resnet50_8xb32_in1k.py'

custom_imports = dict(imports=['sd_transfer.distill', 'sd_transfer.export'],
                      allow_failed_imports=False)

model = dict(type='SnapshotDistiller', temperature=3.0)

custom_hooks = [dict(type='BackboneExportHook')]

# Keep the last 3 full checkpoints, as the cyclic configs do.
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
