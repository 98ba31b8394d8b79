"""The setting hash: what changes the numbers a run computes moves it, nothing else does.

Runs of one setting are seeds of one report row, and ``--resume`` compares it: turning on
TensorBoard or changing the loader's workers must neither split an arm's seeds into rows nor
refuse a resume.
"""
import os.path as osp

import pytest
from conftest import REPO
from mmengine.config import Config

from sd_transfer.datasets.sample_seeds import seed_per_sample
from sd_transfer.setting import config_hash

CONFIG = osp.join(REPO, 'configs/pretrain/tiny/resnet18_sd_tiny.py')

SAME = {
    'loader workers': {'train_dataloader.num_workers': 5, 'val_dataloader.num_workers': 0},
    'persistent workers': {'train_dataloader.persistent_workers': False},
    'pinned memory': {'train_dataloader.pin_memory': True},
    'TensorBoard': {'visualizer.vis_backends': [dict(type='LocalVisBackend'),
                                               dict(type='TensorboardVisBackend')]},
    'logger interval': {'default_hooks.logger.interval': 1},
    'log processor': {'log_processor.window_size': 50},
    'checkpoint retention': {'default_hooks.checkpoint.max_keep_ckpts': 7,
                             'default_hooks.checkpoint.interval': 2},
    'cudnn benchmark': {'env_cfg.cudnn_benchmark': True},
    'launcher': {'launcher': 'slurm'},
    'log level': {'log_level': 'DEBUG'},
}
OTHER = {
    'learning rate': {'optim_wrapper.optimizer.lr': 0.1},
    'augmentation': {'train_dataloader.dataset.pipeline.1.scale': 40},
    'temperature': {'model.temperature': 4.0},
    'batch': {'train_dataloader.batch_size': 16},
    'schedule': {'param_scheduler.periods': [1, 3, 2, 2]},
    'per-rank seeds': {'randomness.diff_rank_seed': True},
}


def _hash(options):
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(options)
    return config_hash(cfg)


@pytest.mark.parametrize('knob', SAME)
def test_what_only_runs_logs_or_keeps_leaves_the_setting(knob):
    assert _hash(SAME[knob]) == _hash({})


@pytest.mark.parametrize('knob', OTHER)
def test_what_changes_the_numbers_changes_the_setting(knob):
    assert _hash(OTHER[knob]) != _hash({})


def test_what_every_run_gets_for_exact_runs_leaves_the_setting():
    """The CLIs wrap every run's train loader (augmentation keyed by sample) and add the hook
    that saves generator states: a run recorded before either existed still resumes."""
    cfg = Config.fromfile(CONFIG)
    seed_per_sample(cfg)
    cfg.custom_hooks = [*cfg.custom_hooks, dict(type='GeneratorStatesHook')]
    assert cfg.train_dataloader.dataset.type == 'SeedPerSampleDataset'
    assert cfg.train_dataloader.sampler.type == 'SampleKeySampler'
    assert config_hash(cfg) == _hash({})
