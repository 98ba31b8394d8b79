"""Bad input: one clear error line naming the file or key, exit code 2, nothing half-written."""
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import REPO, Exploit, run_tool

pytestmark = pytest.mark.slow  # trains or runs tools end to end: not in make test-quick

CONFIG = 'configs/pretrain/tiny/resnet18_cyclic_tiny.py'
ONE_EPOCH = ['--cfg-options', 'train_cfg.max_epochs=1', 'param_scheduler.periods=[1]',
             'param_scheduler.restart_weights=[1]']


def _fails_cleanly(proc, *needles):
    """Exit code 2, the last stderr line is our one-line error naming what is wrong."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: '), last
    for needle in needles:
        assert str(needle) in last, (needle, last)
    return last


def _pretrain(config, data_root, work_dir, *extra, env=None):
    return run_tool('tools/pretrain.py', config, '--data-root', str(data_root),
                    '--work-dir', str(work_dir), *extra, check=False, env=env)


def test_missing_data_root(tmp_path):
    missing = tmp_path / 'nowhere'
    _fails_cleanly(_pretrain(CONFIG, missing, tmp_path / 'w'), missing)
    assert not (tmp_path / 'w').exists()


def test_missing_split_folder(imagenet_to_damage, tmp_path):
    shutil.rmtree(imagenet_to_damage / 'val')
    _fails_cleanly(_pretrain(CONFIG, imagenet_to_damage, tmp_path / 'w'),
                   imagenet_to_damage / 'val')
    assert not (tmp_path / 'w').exists()


def test_missing_named_ann_file(imagenet_to_damage, tmp_path):
    config = tmp_path / 'ann.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = '{REPO}/{CONFIG}'
        train_dataloader = dict(dataset=dict(ann_file='meta/train.txt'))
        '''))
    os.remove(imagenet_to_damage / 'meta' / 'train.txt')
    _fails_cleanly(_pretrain(str(config), imagenet_to_damage, tmp_path / 'w'),
                   imagenet_to_damage / 'meta' / 'train.txt')


def test_ann_file_line_pointing_to_missing_image(imagenet_to_damage, tmp_path):
    first = (imagenet_to_damage / 'meta' / 'train.txt').read_text().splitlines()[0].split()[0]
    os.remove(imagenet_to_damage / 'train' / first)
    _fails_cleanly(_pretrain(CONFIG, imagenet_to_damage, tmp_path / 'w'), 'train.txt:1', first)


def test_empty_class_folder(imagenet_to_damage, tmp_path):
    shutil.rmtree(imagenet_to_damage / 'meta')  # folder layout
    wnid = sorted(os.listdir(imagenet_to_damage / 'train'))[3]
    for f in os.listdir(imagenet_to_damage / 'train' / wnid):
        os.remove(imagenet_to_damage / 'train' / wnid / f)
    _fails_cleanly(_pretrain(CONFIG, imagenet_to_damage, tmp_path / 'w'),
                   imagenet_to_damage / 'train' / wnid, 'no images')


@pytest.mark.parametrize('damage', ['truncate', 'garbage'])
def test_corrupt_jpeg_is_named_or_skipped_on_request(imagenet_to_damage, tmp_path, damage):
    line = (imagenet_to_damage / 'meta' / 'train.txt').read_text().splitlines()[5]
    bad = imagenet_to_damage / 'train' / line.split()[0]
    data = bad.read_bytes()
    bad.write_bytes(data[:len(data) // 2] if damage == 'truncate' else b'not a jpeg at all')
    _fails_cleanly(_pretrain(CONFIG, imagenet_to_damage, tmp_path / 'w', *ONE_EPOCH), bad)

    proc = _pretrain(CONFIG, imagenet_to_damage, tmp_path / 'w2', '--skip-bad-images', *ONE_EPOCH)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f'skipping {bad}' in proc.stdout + proc.stderr


def test_cfg_options_typo_is_refused(tiny_imagenet, tmp_path):
    proc = _pretrain(CONFIG, tiny_imagenet, tmp_path / 'w', '--cfg-options',
                     'train_cfg.max_epoch=1')
    _fails_cleanly(proc, "'train_cfg.max_epoch'", "did you mean 'train_cfg.max_epochs'")
    assert not (tmp_path / 'w').exists()


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_imagenet, tmp_path):
    proc = _pretrain('tests/configs/resnet18_cyclic_tiny_nan.py', tiny_imagenet, tmp_path,
                     '--cfg-options', 'train_cfg.max_epochs=2', 'param_scheduler.periods=[1,1]',
                     'param_scheduler.restart_weights=[1,1]',
                     env={'PYTHONPATH': 'tests', 'SD_PROBE_NAN_AT_ITER': '24'})
    _fails_cleanly(proc, 'non-finite loss at iteration 25', 'loss=nan')
    assert (tmp_path / 'last_checkpoint').read_text().strip().endswith('epoch_1.pth')
    assert not (tmp_path / 'epoch_2.pth').exists()
    state = torch.load(tmp_path / 'epoch_1.pth', weights_only=True)['state_dict']
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())



def test_checkpoint_with_pickled_code_is_refused_not_run(tiny_imagenet, tmp_path):
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pth'
    with open(evil, 'wb') as f:
        pickle.dump({'state_dict': {}, 'meta': Exploit(marker)}, f)
    proc = _pretrain(CONFIG, tiny_imagenet, tmp_path / 'w', '--resume', str(evil))
    _fails_cleanly(proc, evil, 'refused: not only tensors and plain data')
    assert not marker.exists()


def test_atomic_save_survives_kill_mid_write(tmp_path):
    target = tmp_path / 'backbone.pth'
    from sd_transfer.io import atomic_torch_save
    atomic_torch_save({'state_dict': {'w': torch.zeros(3)}}, str(target))
    writer = subprocess.Popen([sys.executable, '-c', textwrap.dedent(f'''
        import torch
        from sd_transfer.io import atomic_torch_save
        big = {{'state_dict': {{'w': torch.ones(64, 1024, 1024)}}}}  # 256 MB: a slow write
        print('writing', flush=True)
        while True:
            atomic_torch_save(big, {str(target)!r})
        ''')], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == 'writing'
    for _ in range(50):  # kill while a temporary file is being written
        if any(n.endswith('.tmp') for n in os.listdir(tmp_path)):
            break
        import time
        time.sleep(0.05)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    state = torch.load(target, weights_only=True)['state_dict']['w']
    assert state.shape == (3, ) or state.shape == (64, 1024, 1024)
    assert state.shape == (3, ) or bool(state.eq(1).all())


@pytest.fixture(scope='module')
def r18_backbone(tmp_path_factory):
    from mmpretrain.models import ResNet
    path = tmp_path_factory.mktemp('r18') / 'backbone.pth'
    torch.save({'state_dict': ResNet(depth=18).state_dict(), 'meta': {'depth': 18}}, path)
    return path


@pytest.fixture
def voc_to_damage(tmp_path):
    """This test's own VOCdevkit, to damage; small (8 trainval, 4 test images a year)."""
    from sd_transfer.datasets import make_tiny_voc
    root = tmp_path / 'VOCdevkit'
    make_tiny_voc(str(root), train_images=8, test_images=4, aug_images=2)
    return root


def _transfer(task, root, backbone, work_dir):
    config = dict(det='configs/transfer/tiny/faster-rcnn_r18_fpn_voc0712_tiny.py',
                  seg='configs/transfer/tiny/deeplabv3_r18-d8_voc12aug_tiny.py')[task]
    return run_tool('tools/transfer.py', task, config, '--backbone', str(backbone),
                    '--data-root', str(root), '--work-dir', str(work_dir),
                    '--cfg-options', 'train_cfg.max_iters=2', check=False)


@pytest.mark.parametrize('damage, needle', [
    ('no_bndbox', 'has no <bndbox>'),
    ('unknown_class', "unknown class 'unicorn'"),
    ('outside', 'outside the'),
])
def test_malformed_voc_xml(voc_to_damage, r18_backbone, tmp_path, damage, needle):
    ids = (voc_to_damage / 'VOC2007/ImageSets/Main/test.txt').read_text().split()
    xml = voc_to_damage / 'VOC2007' / 'Annotations' / f'{ids[3]}.xml'
    text = xml.read_text()
    if damage == 'no_bndbox':
        start, end = text.index('<bndbox>'), text.index('</bndbox>') + len('</bndbox>')
        text = text[:start] + text[end:]
    elif damage == 'unknown_class':
        name_start = text.index('<name>', text.index('<object>')) + len('<name>')
        text = text[:name_start] + 'unicorn' + text[text.index('</name>', name_start):]
    else:
        start = text.index('<xmax>') + len('<xmax>')
        text = text[:start] + '100000' + text[text.index('</xmax>', start):]
    xml.write_text(text)
    _fails_cleanly(_transfer('det', voc_to_damage, r18_backbone, tmp_path / 'w'), xml, needle)
    assert not (tmp_path / 'w').exists()


def test_seg_mask_value_outside_class_range(voc_to_damage, r18_backbone, tmp_path):
    import numpy as np
    from PIL import Image
    root = voc_to_damage / 'VOC2012'
    first = (root / 'ImageSets/Segmentation/val.txt').read_text().split()[0]  # all get tested
    mask_path = root / 'SegmentationClass' / f'{first}.png'
    mask = Image.open(mask_path)
    values = np.array(mask)
    values[:4, :4] = 40  # VOC has classes 0..20 and 255
    broken = Image.fromarray(values, mode='P')
    broken.putpalette(mask.getpalette())
    broken.save(mask_path)
    _fails_cleanly(_transfer('seg', root, r18_backbone, tmp_path / 'w'), mask_path, '[40]')
