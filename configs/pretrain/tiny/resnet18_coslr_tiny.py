# One cosine over the tiny run's 8 epochs, no restarts, no teacher (tests, CPU): the cosine arm.
_base_ = './resnet18_cyclic_tiny.py'

param_scheduler = dict(
    _delete_=True, type='CosineAnnealingLR', T_max=8, by_epoch=True, convert_to_iter_based=True)
