# Label smoothing (eps = 0.1, mmpretrain's LabelSmoothLoss as in its -lbs recipe) on SD's cyclic
# schedule, no teacher: distillation from a teacher behaves much like learned label smoothing
# (Yuan et al., CVPR 2020), so SD should beat this to show the teacher's value. One key away from
# the cyclic baseline.
_base_ = './resnet50_cyclic_8xb32_in1k.py'

model = dict(head=dict(loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, loss_weight=1.0)))
