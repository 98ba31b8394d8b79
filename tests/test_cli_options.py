"""``--cfg-options`` as mmengine merges them: new keys added, near misses refused."""
import argparse

import pytest

from sd_transfer.cli import add_common_args, load_config
from sd_transfer.errors import UserError

FULL = 'configs/pretrain/resnet50_sd_8xb32_in1k.py'
TINY = 'configs/pretrain/tiny/resnet18_cyclic_tiny.py'


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
