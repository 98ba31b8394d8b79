"""Our configs are short diffs over the upstream recipes: a reader diffing them sees only SD."""
import os.path as osp

import pytest
from mmengine.config import Config

import mmdet
import mmpretrain
import mmseg

UPSTREAM = dict(mmpretrain=mmpretrain, mmdet=mmdet, mmseg=mmseg)
SCHEDULE = {'param_scheduler', 'custom_hooks', 'custom_imports', 'default_hooks'}


def _load(path):
    def strip(x):  # package-scoped inheritance tags every dict with its scope
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k != '_scope_'}
        if isinstance(x, (list, tuple)):
            return [strip(v) for v in x]
        return x
    return strip(Config.fromfile(path).to_dict())


def _upstream(package, rel):
    return _load(osp.join(osp.dirname(UPSTREAM[package].__file__), '.mim', 'configs', rel))


def _diff(a, b):
    return {k for k in set(a) | set(b) if a.get(k) != b.get(k)}


@pytest.mark.parametrize('ours, upstream', [
    ('resnet50_cyclic_8xb32_in1k', 'resnet/resnet50_8xb32_in1k.py'),
    ('resnet101_cyclic_8xb32_in1k', 'resnet/resnet101_8xb32_in1k.py'),
    ('resnet50_cyclic_8xb16_cifar100', 'resnet/resnet50_8xb16_cifar100.py'),
])
def test_cyclic_baseline_changes_only_the_schedule(ours, upstream):
    cyclic = _load(f'configs/pretrain/{ours}.py')
    assert _diff(cyclic, _upstream('mmpretrain', upstream)) == SCHEDULE
    assert cyclic['param_scheduler']['type'] == 'CosineRestartLR'
    periods = cyclic['param_scheduler']['periods']
    assert len(set(periods)) == 1 and sum(periods) == cyclic['train_cfg']['max_epochs']
    checkpoint = cyclic['default_hooks']['checkpoint']
    upstream_checkpoint = _upstream('mmpretrain', upstream)['default_hooks']['checkpoint']
    assert checkpoint == dict(upstream_checkpoint, max_keep_ckpts=3)  # only the retention
    assert _diff(cyclic['default_hooks'], _upstream('mmpretrain', upstream)['default_hooks']) == {
        'checkpoint'}

    sd = _load(f'configs/pretrain/{ours.replace("cyclic", "sd")}.py')
    assert _diff(sd, cyclic) == {'model', 'custom_hooks'}
    assert _diff(sd['model'], cyclic['model']) == {'type', 'temperature', 'ce_weight',
                                                    'kd_weight'}
    assert {'type': 'SnapshotTeacherHook'} in sd['custom_hooks']


@pytest.mark.parametrize('ours, package, upstream', [
    ('faster-rcnn_r50_fpn_1x_voc0712_sd', 'mmdet', 'pascal_voc/faster-rcnn_r50_fpn_1x_voc0712.py'),
    ('deeplabv3_r50-d8_4xb4-20k_voc12aug-512x512_sd', 'mmseg',
     'deeplabv3/deeplabv3_r50-d8_4xb4-20k_voc12aug-512x512.py'),
    ('pspnet_r50-d8_4xb4-20k_voc12aug-512x512_sd', 'mmseg',
     'pspnet/pspnet_r50-d8_4xb4-20k_voc12aug-512x512.py'),
    ('fcn_r50-d8_4xb4-20k_voc12aug-512x512_sd', 'mmseg',
     'fcn/fcn_r50-d8_4xb4-20k_voc12aug-512x512.py'),
])
def test_transfer_configs_change_only_the_backbone_init(ours, package, upstream):
    cfg, up = _load(f'configs/transfer/{ours}.py'), _upstream(package, upstream)
    # mmseg's recipes lack auto_scale_lr; ours states their batch (4 GPUs x 4 images)
    added = {'auto_scale_lr'} if package == 'mmseg' else set()
    assert _diff(cfg, up) == {'model', 'custom_imports', 'test_evaluator'} | added
    if added:
        assert cfg['auto_scale_lr'] == dict(enable=False, base_batch_size=16)
        assert up['train_dataloader']['batch_size'] * 4 == 16
    assert _diff(cfg['model'], up['model']) <= {'backbone', 'pretrained'}
    changed = _diff(cfg['model']['backbone'], up['model']['backbone'])
    assert changed <= {'init_cfg', 'type'}
    assert cfg['model']['backbone']['type'] == 'ResNet'
