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
    ('resnetv1c50_cyclic_8xb32_in1k', 'resnet/resnetv1c50_8xb32_in1k.py'),
    ('resnetv1c101_cyclic_8xb32_in1k', 'resnet/resnetv1c101_8xb32_in1k.py'),
    ('resnetv1d50_cyclic_8xb32_in1k', 'resnet/resnetv1d50_8xb32_in1k.py'),
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
    assert _diff(sd['model'], cyclic['model']) == {'type', 'temperature', 'kd_form'}
    assert {'type': 'SnapshotTeacherHook'} in sd['custom_hooks']


@pytest.mark.parametrize('sd, arms', [
    ('resnet50_sd_8xb32_in1k', 2), ('resnet50_sd_8xb16_cifar100', 2), ('tiny/resnet18_sd_tiny', 2),
    ('resnetv1c50_sd_8xb32_in1k', 1), ('resnetv1c101_sd_8xb32_in1k', 1),
    ('resnetv1d50_sd_8xb32_in1k', 1)])
def test_control_and_hinton_arms_are_one_key_from_sd(sd, arms):
    base = _load(f'configs/pretrain/{sd}.py')
    for arm, key, value in (('ceweight', 'kd_weight', 0.0), ('sd-hinton', 'kd_form', 'hinton'))[
            :arms]:
        cfg = _load(f"configs/pretrain/{sd.replace('_sd', '_' + arm)}.py")
        assert _diff(cfg, base) == {'model'}
        assert _diff(cfg['model'], base['model']) == {key} and cfg['model'][key] == value


@pytest.mark.parametrize('ours, upstream', [
    ('resnet50_ban_8xb32_in1k', 'resnet/resnet50_8xb32_in1k.py'),
    ('resnet50_ban_8xb16_cifar100', 'resnet/resnet50_8xb16_cifar100.py'),
])
def test_born_again_generation_is_the_upstream_recipe_with_sd_loss(ours, upstream):
    cfg, up = _load(f'configs/pretrain/{ours}.py'), _upstream('mmpretrain', upstream)
    assert _diff(cfg, up) == {'model', 'custom_hooks', 'custom_imports', 'default_hooks'}
    assert _diff(cfg['model'], up['model']) == {'type', 'temperature'}
    assert cfg['param_scheduler'] == up['param_scheduler']


@pytest.mark.parametrize('cyclic', ['resnet50_cyclic_8xb32_in1k', 'resnet50_cyclic_8xb16_cifar100',
                                    'tiny/resnet18_cyclic_tiny'])
def test_label_smoothing_arm_is_one_key_from_the_cyclic_baseline(cyclic):
    base = _load(f'configs/pretrain/{cyclic}.py')
    cfg = _load(f"configs/pretrain/{cyclic.replace('_cyclic', '_lbs-cyclic')}.py")
    assert _diff(cfg, base) == {'model'}
    assert _diff(cfg['model'], base['model']) == {'head'}
    assert _diff(cfg['model']['head'], base['model']['head']) == {'loss'}
    # mmpretrain's own label-smoothing model, eps = 0.1
    smooth = _upstream('mmpretrain', 'resnet/resnet50_8xb32-lbs_in1k.py')['model']['head']['loss']
    assert cfg['model']['head']['loss'] == smooth


@pytest.mark.parametrize('sd', ['resnet50_sd_8xb32_in1k', 'resnet50_sd_8xb16_cifar100',
                                'tiny/resnet18_sd_tiny'])
def test_pskd_and_ema_teacher_arms_change_the_refresh_and_loss_only(sd):
    base = _load(f'configs/pretrain/{sd}.py')
    pskd = _load(f"configs/pretrain/{sd.replace('_sd', '_pskd')}.py")
    assert _diff(pskd, base) == {'model', 'custom_hooks'}
    assert {k: pskd['model'][k] for k in _diff(pskd['model'], base['model'])} == dict(
        kd_form='pskd', alpha=0.8, temperature=1.0)
    assert pskd['custom_hooks'][0] == dict(type='SnapshotTeacherHook', refresh='epoch')
    ema = _load(f"configs/pretrain/{sd.replace('_sd', '_ema-teacher')}.py")
    assert _diff(ema, base) == {'custom_hooks'}
    assert ema['custom_hooks'][0]['refresh'] == 'ema'
    assert ema['custom_hooks'][1:] == base['custom_hooks'][1:]


@pytest.mark.parametrize('ours, upstream', [
    ('resnet50_lbs_8xb32_in1k', 'resnet/resnet50_8xb32-lbs_in1k.py'),
    ('resnet50_coslr_8xb32_in1k', 'resnet/resnet50_8xb32-coslr_in1k.py')])
def test_reference_recipes_are_upstream_plus_the_export(ours, upstream):
    cfg, up = _load(f'configs/pretrain/{ours}.py'), _upstream('mmpretrain', upstream)
    assert _diff(cfg, up) == {'custom_hooks', 'custom_imports', 'default_hooks'}
    assert cfg['custom_hooks'] == [dict(type='BackboneExportHook')]
    assert _diff(cfg['default_hooks'], up['default_hooks']) == {'checkpoint'}


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
    # mmseg's recipes lack auto_scale_lr; ours states their batch (4 GPUs x 4 images). Our
    # detector validates with mmdet's metric settings in our metric class (no process pool).
    added = {'auto_scale_lr'} if package == 'mmseg' else {'val_evaluator'}
    assert _diff(cfg, up) == {'model', 'custom_imports', 'test_evaluator'} | added
    if package == 'mmseg':
        assert cfg['auto_scale_lr'] == dict(enable=False, base_batch_size=16)
        assert up['train_dataloader']['batch_size'] * 4 == 16
    else:
        assert cfg['val_evaluator'] == {**up['val_evaluator'], 'type': 'VOCMetricPerClass'}
    assert _diff(cfg['model'], up['model']) <= {'backbone', 'pretrained'}
    changed = _diff(cfg['model']['backbone'], up['model']['backbone'])
    assert changed <= {'init_cfg', 'type'}
    assert cfg['model']['backbone']['type'] == 'ResNet'


@pytest.mark.parametrize('decoder, depth', [(d, n) for d in ('deeplabv3', 'pspnet', 'fcn')
                                            for n in (50, 101)])
def test_deep_stem_seg_configs_keep_mmseg_recipes_but_the_init(decoder, depth):
    name = f'{decoder}_r{depth}-d8_4xb4-20k_voc12aug-512x512'
    cfg, up = _load(f'configs/transfer/{name}_v1c.py'), _upstream('mmseg', f'{decoder}/{name}.py')
    assert _diff(cfg, up) == {'model', 'custom_imports', 'test_evaluator', 'auto_scale_lr'}
    assert _diff(cfg['model'], up['model']) == {'backbone', 'pretrained'}
    assert up['model']['pretrained'] == f'open-mmlab://resnet{depth}_v1c'
    assert cfg['model']['pretrained'] is None
    assert _diff(cfg['model']['backbone'], up['model']['backbone']) == {'init_cfg'}
    assert cfg['model']['backbone']['type'] == 'ResNetV1c'


def test_deep_stem_detector_differs_from_ours_in_the_backbone_type_only():
    cfg = _load('configs/transfer/faster-rcnn_r50-v1d_fpn_1x_voc0712_sd.py')
    plain = _load('configs/transfer/faster-rcnn_r50_fpn_1x_voc0712_sd.py')
    assert _diff(cfg, plain) == {'model'} and _diff(cfg['model'], plain['model']) == {'backbone'}
    assert _diff(cfg['model']['backbone'], plain['model']['backbone']) == {'type'}
    assert cfg['model']['backbone']['type'] == 'ResNetV1d'
