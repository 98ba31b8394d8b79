# Label smoothing (eps = 0.1) on the tiny cyclic schedule, no teacher (tests, CPU).
_base_ = './resnet18_cyclic_tiny.py'

model = dict(head=dict(loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, loss_weight=1.0)))
