"""Deep-stem backbones (ResNetV1c/V1d): exported with mmdet's/mmseg's key names, proven equal in
their models, verified against the matching architecture only, fine-tuned in mmseg's V1c recipe."""
import pytest
import torch
from conftest import REPO, run_tool
from probes import random_classifier
from mmengine.config import Config
from mmengine.logging import MMLogger

from sd_transfer.errors import UserError
from sd_transfer.export import backbone_state_dict
from sd_transfer.transfer import read_backbone, verify_backbone

pytestmark = pytest.mark.slow  # trains or runs tools end to end: not in make test-quick

MMLogger.get_instance('mmengine', log_level='WARNING')  # no weight-init report per model
SEG_V1C = 'configs/transfer/tiny/deeplabv3_r18v1c-d8_voc12aug_tiny.py'
SEG_PLAIN = 'configs/transfer/tiny/deeplabv3_r18-d8_voc12aug_tiny.py'


@pytest.mark.parametrize('arch, downstream', [
    ('ResNetV1c', 'mmseg'), ('ResNetV1d', 'mmseg'), ('ResNetV1d', 'mmdet')])
def test_exported_deep_stem_computes_the_same_downstream(arch, downstream):
    model = random_classifier(arch)
    state = backbone_state_dict(model)
    assert 'stem.3.weight' in state and 'stem.1.conv.weight' not in state
    backbones = __import__(f'{downstream}.models.backbones', fromlist=[arch])
    twin = getattr(backbones, arch)(depth=50, out_indices=(0, 1, 2, 3))
    twin.load_state_dict(state, strict=True)
    twin.eval()  # (mmseg's and mmdet's ResNet.train() return None: no chaining)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        stem_ours = model.backbone.stem(x)
        stem_theirs = twin.stem(x)
        ours, theirs = model.backbone(x), twin(x)
    torch.testing.assert_close(stem_theirs, stem_ours, rtol=0, atol=0)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(b, a, rtol=0, atol=0)


def test_verification_accepts_exactly_the_matching_architecture(tmp_path):
    v1c = tmp_path / 'v1c.pth'
    plain = tmp_path / 'plain.pth'
    from mmseg.models.backbones import ResNet, ResNetV1c
    torch.save({'state_dict': ResNetV1c(depth=18).state_dict(),
                'meta': dict(arch='ResNetV1c', depth=18)}, v1c)
    torch.save({'state_dict': ResNet(depth=18).state_dict(),
                'meta': dict(arch='ResNet', depth=18)}, plain)
    v1c_cfg = Config.fromfile(f'{REPO}/{SEG_V1C}').model.backbone
    plain_cfg = Config.fromfile(f'{REPO}/{SEG_PLAIN}').model.backbone
    for path, cfg in ((v1c, v1c_cfg), (plain, plain_cfg)):
        assert verify_backbone(*read_backbone(str(path)), cfg, 'seg', str(path)) > 0
    with pytest.raises(UserError, match=r"missing keys \(first: stem\.0\.weight.*meta says ResNet\)|"
                       r"meta says ResNet\).*missing keys"):
        verify_backbone(*read_backbone(str(plain)), v1c_cfg, 'seg', str(plain))
    with pytest.raises(UserError, match=r'unexpected keys \(first: stem\.0\.weight'):
        verify_backbone(*read_backbone(str(v1c)), plain_cfg, 'seg', str(v1c))


def test_openmmlab_and_mmpretrain_v1c_checkpoints_are_accepted(tmp_path):
    """What mmseg's recipes start from (open-mmlab://resnet50_v1c: mmseg's key names plus fc) and
    an mmpretrain ResNetV1c classifier checkpoint (its own names) load into the V1c config."""
    from mmseg.models.backbones import ResNetV1c
    net = ResNetV1c(depth=18)
    openmmlab = tmp_path / 'resnet18_v1c.pth'
    torch.save({'state_dict': {**net.state_dict(), 'fc.weight': torch.zeros(1000, 512)}},
               openmmlab)
    classifier = tmp_path / 'resnetv1c18_classifier.pth'
    model = random_classifier('ResNetV1c')
    torch.save({'state_dict': model.state_dict(), 'meta': {'epoch': 100}}, classifier)
    cfg = Config.fromfile(f'{REPO}/{SEG_V1C}').model.backbone
    state, meta = read_backbone(str(openmmlab))
    assert verify_backbone(state, meta, cfg, 'seg', str(openmmlab)) == len(net.state_dict())
    state, _ = read_backbone(str(classifier))
    assert state.keys() == backbone_state_dict(model).keys()
    verify_backbone(state, None, dict(cfg, depth=50), 'seg', str(classifier))


def test_tiny_v1c_sd_backbone_fine_tunes_in_the_v1c_deeplabv3(tiny_imagenet, tiny_voc, tmp_path):
    run_tool('tools/pretrain.py', 'configs/pretrain/tiny/resnetv1c18_sd_tiny.py', '--work-dir',
             str(tmp_path / 'pretrain'), '--data-root', tiny_imagenet, '--seed', '0',
             '--cfg-options', 'train_cfg.max_epochs=2', 'param_scheduler.periods=[1,1]',
             'param_scheduler.restart_weights=[1,1]')
    backbone = tmp_path / 'pretrain' / 'backbone.pth'
    meta = torch.load(backbone, weights_only=True)['meta']
    assert (meta['arch'], meta['keys']) == ('ResNetV1c', 'mmdet/mmseg')
    proc = run_tool('tools/transfer.py', 'seg', SEG_V1C, '--backbone', str(backbone),
                    '--data-root', f'{tiny_voc}/VOC2012', '--work-dir', str(tmp_path / 'seg'),
                    '--cfg-options', 'train_cfg.max_iters=4', 'train_cfg.val_interval=4')
    assert 'backbone OK' in proc.stdout + proc.stderr
    trained = torch.load(tmp_path / 'seg' / 'iter_4.pth', weights_only=True)['state_dict']
    exported = torch.load(backbone, weights_only=True)['state_dict']
    # 4 SGD steps move the loaded stem convs by a few percent of their norm; a stem left at its
    # random init would be as far from the export as two independent draws (about 1.4 norms)
    for conv in ('stem.0.weight', 'stem.3.weight', 'stem.6.weight'):
        moved = (trained[f'backbone.{conv}'] - exported[conv]).norm() / exported[conv].norm()
        assert 0 < moved < 0.1, (conv, moved)
