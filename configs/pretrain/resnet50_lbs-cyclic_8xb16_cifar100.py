# Label smoothing (eps = 0.1, mmpretrain's LabelSmoothLoss) on SD's cyclic CIFAR-100 schedule, no
# teacher. One key away from the cyclic baseline.
_base_ = './resnet50_cyclic_8xb16_cifar100.py'

model = dict(head=dict(loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, loss_weight=1.0)))
