"""What runs record for the report: code version, command and CUDA stack; the test config's
hash; what a batch other than the recipe's means."""
import os.path as osp
import shlex
import subprocess
import sys

import torch
import pytest
from conftest import REPO
from mmengine.config import Config

from sd_transfer.setting import environment

pytestmark = pytest.mark.slow  # trains or runs tools end to end: not in make test-quick

DET = osp.join(REPO, 'configs/transfer/tiny/faster-rcnn_r18_fpn_voc0712_tiny.py')


def _git(*args):
    return subprocess.run(['git', '-C', REPO, *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_environment_records_code_command_and_cuda_stack(monkeypatch):
    env = environment(1)
    assert env['git_commit'] == _git('rev-parse', 'HEAD')
    assert env['git_dirty'] == bool(_git('status', '--porcelain', '--untracked-files=no'))
    assert env['command'] == shlex.join(sys.argv)
    if torch.cuda.is_available():
        assert env['cuda'] == torch.version.cuda and env['cudnn'] == torch.backends.cudnn.version()
        assert env['driver']
    else:
        assert (env['cuda'], env['cudnn'], env['driver']) == (None, None, None)
    monkeypatch.setenv('PATH', '')  # no git: recorded as unknown, never an error
    assert (environment(1)['git_commit'], environment(1)['git_dirty']) == (None, None)


def test_evaluation_hash_follows_the_test_config_only():
    """What tells a re-test with another evaluator from one that repeats the fine-tuning's."""
    from sd_transfer.cli import rebase_data_root
    from sd_transfer.setting import evaluation_hash
    cfg = Config.fromfile(DET)
    same = evaluation_hash(cfg)
    rebase_data_root(cfg, '/elsewhere/VOCdevkit', DET)
    cfg.train_cfg.max_iters = 1
    assert evaluation_hash(cfg) == same  # other data root, other training: the same test
    cfg.test_evaluator.eval_mode = 'area'
    area = evaluation_hash(cfg)
    cfg.test_evaluator.eval_mode = '11points'
    cfg.model.test_cfg.rcnn.score_thr = 0.3
    assert len({same, area, evaluation_hash(cfg)}) == 3


def _toy_runner(tmp_path, batch, base):
    """A real mmengine Runner, iteration-based, with our RunInfoHook; nothing to train."""
    from mmengine.model import BaseModel
    from mmengine.registry import DATASETS, MODELS
    from mmengine.runner import Runner

    import sd_transfer.engine  # noqa: F401  registers RunInfoHook

    @MODELS.register_module(name='RunRecordsToyModel', force=True)
    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(2, 1)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            out = self.linear(torch.stack(inputs))
            return dict(loss=out.sum()) if mode == 'loss' else out

    @DATASETS.register_module(name='RunRecordsToyData', force=True)
    class Data(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return dict(inputs=torch.zeros(2))

    cfg = Config(dict(
        model=dict(type='RunRecordsToyModel'), work_dir=str(tmp_path),
        train_dataloader=dict(dataset=dict(type='RunRecordsToyData'), batch_size=batch,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        auto_scale_lr=dict(enable=False, base_batch_size=base),
        custom_hooks=[dict(type='RunInfoHook')], default_scope='mmengine'))
    return Runner.from_cfg(cfg)


def test_log_says_what_a_batch_other_than_the_recipes_means(tmp_path):
    runner = _toy_runner(tmp_path, batch=2, base=8)
    runner.train()
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        log = f.read()
    assert "batch 2 vs the recipe's 8: sees 4× fewer images than the recipe" in log
    assert runner.message_hub.get_info('setting') == dict(
        config_hash=runner.message_hub.get_info('setting')['config_hash'], total_batch=2,
        world_size=1, precision='fp32', base_batch=8, by_epoch=False)
