# Tiny born-again generation (tests, CPU): the tiny ResNet-18 set-up with one cosine decay over its
# 8 epochs instead of SD's cycles; tools/born_again.py gives generation k+1 generation k's final
# checkpoint as --teacher.
_base_ = './resnet18_cyclic_tiny.py'

model = dict(type='SnapshotDistiller', temperature=3.0)

param_scheduler = dict(
    _delete_=True, type='CosineAnnealingLR', T_max=8, by_epoch=True, convert_to_iter_based=True)
