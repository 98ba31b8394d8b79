"""``--cfg-options`` as mmengine merges them (new keys added, near misses refused) and ``--vis``
(TensorBoard / W&B through mmengine's visualizer, outside the run's setting)."""
import argparse
import glob
import importlib.util
import json

import pytest
from conftest import run_tool
from mmengine.config import Config

from sd_transfer.cli import add_common_args, add_vis_backends, load_config
from sd_transfer.errors import UserError
from sd_transfer.setting import config_hash

FULL = 'configs/pretrain/resnet50_sd_8xb32_in1k.py'
TINY = 'configs/pretrain/tiny/resnet18_cyclic_tiny.py'
ONE_EPOCH = ['train_cfg.max_epochs=1', 'param_scheduler.periods=[1]',
             'param_scheduler.restart_weights=[1]']


def _config(*argv):
    """The config as a training tool resolves it from this command line."""
    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    add_common_args(parser)
    return load_config(parser.parse_args(argv))


def test_cfg_options_add_keys_the_config_lacks(capsys):
    """The issue's three: README's exact-resume advice, and two keys upstream configs may omit."""
    new = ['train_dataloader.persistent_workers', 'randomness.diff_rank_seed',
           'model.head.loss.label_smooth_val']
    cfg = _config(FULL, '--cfg-options', 'train_cfg.max_epochs=2', f'{new[0]}=False',
                  f'{new[1]}=True', f'{new[2]}=0.1')
    assert cfg.train_dataloader.persistent_workers is False
    assert cfg.randomness.diff_rank_seed is True and cfg.model.head.loss.label_smooth_val == 0.1
    assert cfg.train_cfg.max_epochs == 2
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith('--cfg-options')] == [
        f"--cfg-options: adding '{key}', which {FULL} does not set" for key in new]


@pytest.mark.parametrize('option, message', [
    # a near miss of a key beside it, at any depth
    ('train_dataloader.persistent_worker=False',
     "key 'train_dataloader.persistent_worker' does not exist in "
     f"{TINY} (did you mean 'train_dataloader.persistent_workers'?)"),
    ('train_cfgs.max_epochs=1', "(did you mean 'train_cfg.max_epochs'?)"),
    # what mmengine's merge would fail on with a traceback
    ('train_cfg.max_epochs.x=1',
     f"'train_cfg.max_epochs' in {TINY} is a value (int), not a dict"),
    ('param_scheduler.periods.4=1',
     f"'param_scheduler.periods' in {TINY} is a list of 4, and '4' is no index of it"),
])
def test_cfg_options_refused(option, message):
    with pytest.raises(UserError, match='^--cfg-options: ') as error:
        _config(TINY, '--cfg-options', option)
    assert message in str(error.value)


def test_config_text_is_written_without_yapf(monkeypatch):
    """The Runner writes ``cfg.pretty_text`` into the log, ``work_dir/<config>.py`` and every
    checkpoint: without yapf (0.1-0.7 s a time), still Python that reads back as the same config.
    Pins that mmengine 0.10.7's ``fromfile`` drops its ``format_python_code=False``, the reason
    for ``sd_transfer.cli.unformatted``: when this fails, upstream's option works."""
    det = 'configs/transfer/faster-rcnn_r50_fpn_1x_voc0712_sd.py'
    cfg = _config(det, '--cfg-options', 'train_cfg.max_epochs=2')

    def no_yapf(*args, **kwargs):
        raise AssertionError('yapf called')

    monkeypatch.setattr('mmengine.config.config.FormatCode', no_yapf)
    text = cfg.pretty_text
    assert Config.fromstring(text, '.py').to_dict() == cfg.to_dict()
    assert 'max_epochs=2' in text
    with pytest.raises(SyntaxError):  # mmengine turns any yapf error into this
        Config.fromfile(det, format_python_code=False).pretty_text


def _backend_types(cfg):
    return [b['type'] for b in cfg.visualizer.vis_backends]


def test_vis_backends_are_not_part_of_the_setting():
    cfg = _config(TINY)
    before = config_hash(cfg)
    add_vis_backends(cfg, ['tensorboard', 'wandb', 'tensorboard'])
    assert _backend_types(cfg) == ['LocalVisBackend', 'TensorboardVisBackend', 'WandbVisBackend']
    assert config_hash(cfg) == before


def _installed(package):
    return importlib.util.find_spec(package) is not None


@pytest.mark.parametrize('name', ['tensorboard', 'wandb'])
def test_vis_without_its_package_is_refused_before_the_run(name, tiny_imagenet, tmp_path):
    """mmengine would import the package once the run had claimed its work dir, and fail there
    with a traceback."""
    if _installed(name):
        pytest.skip(f'{name} is installed here')
    proc = run_tool('tools/pretrain.py', TINY, '--data-root', tiny_imagenet, '--work-dir',
                    str(tmp_path / 'w'), '--vis', name, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f'error: --vis {name} needs the {name} package (pip install {name})')
    assert not (tmp_path / 'w').exists()


@pytest.mark.skipif(not _installed('tensorboard'), reason='tensorboard is not installed')
def test_tensorboard_run_records_the_setting_of_a_run_without_it(tiny_imagenet, tmp_path):
    run_tool('tools/pretrain.py', TINY, '--data-root', tiny_imagenet, '--work-dir',
             str(tmp_path / 'w'), '--vis', 'tensorboard', '--cfg-options', *ONE_EPOCH)
    assert glob.glob(str(tmp_path / 'w/*/vis_data/events.out.tfevents.*'))
    assert glob.glob(str(tmp_path / 'w/*/vis_data/scalars.json'))  # what the report reads
    with open(tmp_path / 'w/run.json') as f:
        recorded = json.load(f)['config_hash']
    assert recorded == config_hash(_config(TINY, '--data-root', tiny_imagenet, '--cfg-options',
                                           *ONE_EPOCH))
