"""Image checks reject only what is broken, and --skip-bad-images works in train, val and test."""
import io

import numpy as np
import pytest
from conftest import run_tool
from PIL import Image

from sd_transfer.datasets.loading import SKIP_LOG, image_problem, read_skipped

CONFIG = 'configs/pretrain/tiny/resnet18_cyclic_tiny.py'
ONE_EPOCH = ['--cfg-options', 'train_cfg.max_epochs=1', 'param_scheduler.periods=[1]',
             'param_scheduler.restart_weights=[1]']


def _picture(mode='RGB', size=(48, 40)):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels).convert(mode)


def _encode(img, fmt='JPEG', **kwargs):
    buffer = io.BytesIO()
    img.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _with_exif_thumbnail(data: bytes) -> bytes:
    """A JPEG whose APP1 segment holds a complete JPEG thumbnail (its own end marker)."""
    thumbnail = _encode(_picture(size=(8, 8)))
    payload = b'Exif\x00\x00' + thumbnail
    app1 = b'\xff\xe1' + (len(payload) + 2).to_bytes(2, 'big') + payload
    return data[:2] + app1 + data[2:]


VALID = {
    'baseline': lambda: _encode(_picture()),
    'trailer bytes': lambda: _encode(_picture()) + b'\x00' * 1000 + b'camera trailer \xff\xd8',
    'progressive': lambda: _encode(_picture(), progressive=True),
    'CMYK': lambda: _encode(_picture('CMYK')),
    'grayscale': lambda: _encode(_picture('L')),
    'PNG named .JPEG': lambda: _encode(_picture(), 'PNG'),
    'EXIF thumbnail': lambda: _with_exif_thumbnail(_encode(_picture())),
}
BROKEN = {
    'truncated': lambda: _encode(_picture())[:-400],
    'truncated progressive': lambda: _encode(_picture(), progressive=True)[:-300],
    'truncated after its thumbnail': lambda: _with_exif_thumbnail(_encode(_picture()))[:-500],
    'truncated PNG': lambda: _encode(_picture(), 'PNG')[:-200],
    'empty': lambda: b'',
}


@pytest.mark.parametrize('kind', VALID)
def test_valid_variants_pass(kind):
    data = VALID[kind]()
    assert image_problem(data) is None
    assert Image.open(io.BytesIO(data)).convert('RGB').size == (48, 40)  # and they decode


@pytest.mark.parametrize('kind', BROKEN)
def test_broken_files_are_named(kind):
    assert image_problem(BROKEN[kind]()) is not None


def _images(root, split):
    return [root / split / line.split()[0]
            for line in (root / 'meta' / f'{split}.txt').read_text().splitlines()]


def _pretrain(root, work_dir, *extra):
    return run_tool('tools/pretrain.py', CONFIG, '--data-root', str(root), '--work-dir',
                    str(work_dir), *extra, *ONE_EPOCH, check=False)


def test_variants_train_and_validate(imagenet_to_damage, tmp_path):
    """A run over images of every valid variant, in train and val, starts and ends normally."""
    for split in ('train', 'val'):
        for path, make in zip(_images(imagenet_to_damage, split), VALID.values()):
            path.write_bytes(make())
    proc = _pretrain(imagenet_to_damage, tmp_path / 'w')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'skipping' not in proc.stdout + proc.stderr


def test_skip_bad_images_in_train_and_val(imagenet_to_damage, tmp_path):
    bad_train = _images(imagenet_to_damage, 'train')[5]
    bad_val = _images(imagenet_to_damage, 'val')[3]
    bad_train.write_bytes(bad_train.read_bytes()[:300])
    bad_val.write_bytes(b'')

    proc = _pretrain(imagenet_to_damage, tmp_path / 'strict')
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith('error: ')

    work_dir = tmp_path / 'w'
    proc = _pretrain(imagenet_to_damage, work_dir, '--skip-bad-images')
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    skipped = read_skipped(str(work_dir / SKIP_LOG))
    assert skipped == {'train': {str(bad_train): 'truncated JPEG (no end-of-image marker after '
                                 'its last scan)'},
                       'val': {str(bad_val): 'empty file'}}
    assert '1 of 20 images of val_dataloader left out' in log
    assert 'skipped images up to epoch 1: 1 in val, 1 in train' in log
    assert 'skipped images in total: 1 in val, 1 in train' in log
    assert 'Epoch(val) [1]' in log  # validated without the broken image
