"""tools/export.py: backbones for torchvision, timm and mmdet/mmseg, each loaded here into the
target library's own model and compared with mmpretrain's, and a torchvision file fine-tuned."""
import importlib.util
import json

import pytest
import torch
from conftest import run_tool
from probes import random_classifier
from mmengine.logging import MMLogger

from sd_transfer.errors import UserError
from sd_transfer.export import backbone_state_dict
from sd_transfer.export_formats import Reference, export_backbone, verify
from sd_transfer.io import safe_torch_load

pytestmark = pytest.mark.slow  # trains or runs tools end to end: not in make test-quick

MMLogger.get_instance('mmengine', log_level='WARNING')  # no weight-init report per model
HAS_TIMM = importlib.util.find_spec('timm') is not None
needs_timm = pytest.mark.skipif(not HAS_TIMM, reason='timm is not installed')
TIMM_NAME = dict(ResNet='', ResNetV1c='c', ResNetV1d='d')
DET = 'configs/transfer/tiny/faster-rcnn_r18_fpn_voc0712_tiny.py'


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    """For each family: the classifier, its backbone.pth (as BackboneExportHook writes it) and a
    pretraining checkpoint (epoch_N.pth: backbone.*, head.fc.*)."""
    folder = tmp_path_factory.mktemp('pretrained')
    files = {}
    for arch, depth in (('ResNet', 18), ('ResNet', 50), ('ResNetV1c', 50), ('ResNetV1d', 50)):
        model = random_classifier(arch, depth, num_classes=10, seed=depth)
        backbone, checkpoint = folder / f'{arch}{depth}.pth', folder / f'{arch}{depth}_epoch.pth'
        torch.save({'state_dict': backbone_state_dict(model),
                    'meta': dict(arch=arch, depth=depth, cycle=4, keys='mmdet/mmseg')}, backbone)
        torch.save({'state_dict': model.state_dict(), 'meta': dict(epoch=3, iter=30),
                    'optimizer': {}}, checkpoint)
        files[arch, depth] = model, str(backbone), str(checkpoint)
    return files


def _target(fmt, arch, depth, out, classes=None):
    """The file loaded into the library's own model the way its users load one; returns a
    function giving the last stage's features and the logits (None without a head)."""
    if fmt == 'mmlab':
        from mmseg.models import backbones
        model = getattr(backbones, arch)(depth=depth, out_indices=(0, 1, 2, 3))
        model.load_state_dict(safe_torch_load(out)['state_dict'])
        model.eval()
        return lambda x: (model(x)[-1], None)
    if fmt == 'torchvision':
        import torchvision
        model = getattr(torchvision.models, f'resnet{depth}')(num_classes=classes or 1000)
        body = torch.nn.Sequential(*list(model.children())[:-2])  # up to layer4
    else:
        import timm
        model = timm.create_model(f'resnet{depth}{TIMM_NAME[arch]}', num_classes=classes or 1000)
        body = model.forward_features
    state = safe_torch_load(out)
    if classes:
        model.load_state_dict(state)
    else:
        assert set(model.state_dict()) - set(state) == {'fc.weight', 'fc.bias'}
        model.load_state_dict(state, strict=False)
    model.eval()
    return lambda x: (body(x), model(x) if classes else None)


FAMILIES = [('mmlab', 'ResNet', 18), ('mmlab', 'ResNetV1c', 50), ('mmlab', 'ResNetV1d', 50),
            ('torchvision', 'ResNet', 18), ('torchvision', 'ResNet', 50),
            pytest.param('timm', 'ResNet', 50, marks=needs_timm),
            pytest.param('timm', 'ResNetV1c', 50, marks=needs_timm),
            pytest.param('timm', 'ResNetV1d', 50, marks=needs_timm)]


@pytest.mark.parametrize('fmt, arch, depth', FAMILIES)
def test_exported_backbone_computes_the_same_in_its_library(pretrained, tmp_path, fmt, arch,
                                                            depth):
    model, backbone, _ = pretrained[arch, depth]
    out = tmp_path / f'{fmt}.pth'
    info = export_backbone(backbone, fmt, str(out))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features, _ = _target(fmt, arch, depth, out)(x)
        torch.testing.assert_close(features, model.backbone(x)[-1], rtol=0, atol=1e-5)
    with open(f'{out}.json') as f:
        assert json.load(f) == json.loads(json.dumps(info))
    assert (info['arch'], info['depth'], info['format'], info['classes']) == (arch, depth, fmt,
                                                                             None)
    assert info['meta']['cycle'] == 4 and max(info['max_abs_diff'].values()) <= 1e-5
    if fmt == 'mmlab':  # as backbone.pth, with the meta inside too
        assert safe_torch_load(out)['meta']['arch'] == arch


@pytest.mark.parametrize('fmt, arch', [('torchvision', 'ResNet'),
                                       pytest.param('timm', 'ResNetV1d', marks=needs_timm)])
def test_head_from_the_pretraining_checkpoint(pretrained, tmp_path, fmt, arch):
    model, _, checkpoint = pretrained[arch, 50]
    out = tmp_path / f'{fmt}_head.pth'
    info = export_backbone(checkpoint, fmt, str(out), with_head=True)
    assert info['classes'] == 10 and info['meta'] == {'epoch': 3, 'iter': 30}
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        _, logits = _target(fmt, arch, 50, out, classes=10)(x)
        torch.testing.assert_close(logits, model(x, mode='tensor'), rtol=0, atol=1e-5)


@pytest.mark.skipif(importlib.util.find_spec('safetensors') is None,
                    reason='safetensors is not installed')
def test_safetensors_file_loads_into_torchvision(pretrained, tmp_path):
    import torchvision
    from safetensors.torch import load_file
    model, backbone, _ = pretrained['ResNet', 18]
    out = tmp_path / 'resnet18.safetensors'
    export_backbone(backbone, 'torchvision', str(out))
    target = torchvision.models.resnet18().eval()
    assert set(target.load_state_dict(load_file(out), strict=False).missing_keys) == {
        'fc.weight', 'fc.bias'}
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = torch.nn.Sequential(*list(target.children())[:-2])(x)
        torch.testing.assert_close(features, model.backbone(x)[-1], rtol=0, atol=1e-5)


def _refusals(pretrained):
    plain, v1c = pretrained['ResNet', 18][1:], pretrained['ResNetV1c', 50][1:]
    cases = {
        'deep stem into torchvision': (v1c[0], 'torchvision', {},
                                       'torchvision has no deep-stem ResNet (ResNetV1c)'),
        'head from backbone.pth': (plain[0], 'torchvision', dict(with_head=True),
                                   'no classifier head (head.fc.*)'),
        'head for mmdet': (plain[1], 'mmlab', dict(with_head=True),
                           'mmdet and mmseg take no classifier head'),
        'not a weights file name': (plain[0], 'mmlab', dict(suffix='.bin'),
                                    'expected a .pth or .safetensors file name')}
    if not HAS_TIMM:
        cases['timm without timm'] = (plain[0], 'timm', {}, 'needs the timm package')
    if importlib.util.find_spec('safetensors') is None:
        cases['safetensors without safetensors'] = (plain[0], 'torchvision',
                                                    dict(suffix='.safetensors'),
                                                    'needs the safetensors package')
    return cases


def test_refusals_write_nothing(pretrained, tmp_path):
    from mmpretrain.models import ResNet_CIFAR
    cifar = tmp_path / 'cifar.pth'
    torch.save({'state_dict': ResNet_CIFAR(depth=18).state_dict(),
                'meta': dict(arch='ResNet_CIFAR', depth=18)}, cifar)
    cases = dict(_refusals(pretrained), cifar=(str(cifar), 'torchvision', {},
                                               "conv1.weight [64, 3, 3, 3] in the file"))
    for name, (source, fmt, options, message) in cases.items():
        out = tmp_path / f"out{options.pop('suffix', '.pth')}"
        with pytest.raises(UserError) as error:
            export_backbone(source, fmt, str(out), **options)
        assert message in str(error.value), name
        assert not out.exists() and not (tmp_path / f'{out.name}.json').exists(), name


def test_features_that_differ_are_refused(pretrained):
    """The check the export makes before writing, given weights that load but compute
    otherwise (two BN layers of one block swapped, as a wrong key mapping would)."""
    model, backbone, _ = pretrained['ResNet', 18]
    state = safe_torch_load(backbone)['state_dict']
    reference = Reference('ResNet', 18, state)
    exported = reference.downstream_state()
    assert verify(exported, 'torchvision', 'ResNet', 18, reference, 'out.pth')['stage 4'] == 0
    for part in ('weight', 'bias'):
        key = f'layer4.0.bn1.{part}'
        exported[key], exported[key.replace('bn1', 'bn2')] = (
            exported[key.replace('bn1', 'bn2')], exported[key])
    with pytest.raises(UserError, match=r"^out.pth: the torchvision.models.resnet18 model "
                       r"computes other stage 4 features than mmpretrain's ResNet-18 \(max "):
        verify(exported, 'torchvision', 'ResNet', 18, reference, 'out.pth')


def test_torchvision_file_fine_tunes_in_the_detector(tiny_voc, tmp_path):
    """Through both tools as a user runs them: the export of a ResNet-18 backbone.pth, then
    tools/transfer.py from the torchvision file (which it reads as torchvision's own)."""
    from mmpretrain.models import ResNet
    torch.manual_seed(0)
    net = ResNet(depth=18)
    net.init_weights()
    backbone, exported = tmp_path / 'backbone.pth', tmp_path / 'resnet18_tv.pth'
    torch.save({'state_dict': net.state_dict(), 'meta': dict(arch='ResNet', depth=18)}, backbone)
    proc = run_tool('tools/export.py', str(backbone), '--format', 'torchvision', '--out',
                    str(exported))
    assert f'exported {exported} for torchvision.models.resnet18' in proc.stdout
    bad = run_tool('tools/export.py', str(backbone), '--format', 'torchvision', '--with-head',
                   '--out', str(tmp_path / 'head.pth'), check=False)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith(
        f'error: {backbone}: no classifier head')
    assert not (tmp_path / 'head.pth').exists()

    proc = run_tool('tools/transfer.py', 'det', DET, '--backbone', str(exported),
                    '--data-root', tiny_voc, '--work-dir', str(tmp_path / 'det'),
                    '--cfg-options', 'train_cfg.max_iters=2')
    assert 'backbone OK: 120 tensors, 0 missing, 0 unexpected' in proc.stdout + proc.stderr
    with open(tmp_path / 'det' / 'metrics.json') as f:
        trained = safe_torch_load(json.load(f)['checkpoint']['path'])['state_dict']
    weights = safe_torch_load(exported)
    frozen = [k for k in weights if k.startswith(('conv1.', 'bn1.', 'layer1.'))]
    assert len(frozen) > 20  # what the recipe freezes still equals the exported file
    for key in frozen:
        assert torch.equal(trained['backbone.' + key], weights[key]), key
