"""Runs never share a work dir by accident: distinct defaults, and a refusal naming both runs."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from conftest import REPO, tool_env

from sd_transfer import run_dir
from sd_transfer.errors import UserError
from sd_transfer.io import file_sha256

pytestmark = pytest.mark.slow  # trains or runs tools end to end: not in make test-quick

DET = osp.join(REPO, 'configs/transfer/tiny/faster-rcnn_r18_fpn_voc0712_tiny.py')
PRETRAIN = osp.join(REPO, 'configs/pretrain/tiny/resnet18_cyclic_tiny.py')


def tool(cwd, *args):
    """Run a tool from ``cwd`` without --work-dir, as a user in their project folder does."""
    return subprocess.run([sys.executable, osp.join(REPO, 'tools', args[0]), *args[1:]],
                          cwd=cwd, capture_output=True, text=True, timeout=600, env=tool_env())


def error_line(proc):
    assert proc.returncode == 2, proc.stderr[-3000:]
    return proc.stderr.strip().splitlines()[-1]


@pytest.fixture(scope='module')
def backbones(tmp_path_factory):
    """The baseline's and SD's backbones as the pretraining exports them (random ResNet-18s)."""
    from mmpretrain.models import ResNet
    folder = tmp_path_factory.mktemp('backbones')
    paths = {}
    for seed, name in enumerate(('resnet18_cyclic_tiny', 'resnet18_sd_tiny')):
        torch.manual_seed(seed)
        net = ResNet(depth=18)
        net.init_weights()
        paths[name] = folder / name / 'backbone.pth'
        paths[name].parent.mkdir()
        torch.save({'state_dict': net.state_dict(),
                    'meta': dict(config=f'{name}.py', cycle=4, depth=18)}, paths[name])
    return paths


def test_baseline_and_sd_transfers_land_apart_and_resume_their_own(backbones, tiny_voc,
                                                                   tmp_path):
    untrained = ['--cfg-options', 'train_cfg.max_iters=0']
    for name, path in backbones.items():
        proc = tool(tmp_path, 'transfer.py', 'det', DET, '--backbone', str(path),
                    '--data-root', tiny_voc, '--seed', '0', *untrained)
        assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted((tmp_path / 'work_dirs/faster-rcnn_r18_fpn_voc0712_tiny').iterdir())
    sha = {name: file_sha256(str(p))[:8] for name, p in backbones.items()}
    assert [r.name for r in runs] == [f'resnet18_cyclic_tiny_cycle4-{sha["resnet18_cyclic_tiny"]}'
                                      '_seed0',
                                      f'resnet18_sd_tiny_cycle4-{sha["resnet18_sd_tiny"]}_seed0']
    assert all((r / 'metrics.json').is_file() for r in runs)

    # SD's backbone into the baseline's folder, resumed: refused, both named, nothing written
    before = sorted(p.name for p in runs[0].rglob('*'))
    proc = tool(tmp_path, 'transfer.py', 'det', DET, '--backbone',
                str(backbones['resnet18_sd_tiny']), '--data-root', tiny_voc, '--seed', '0',
                '--work-dir', str(runs[0]), '--resume', *untrained)
    line = error_line(proc)
    assert f'cannot resume {runs[0]}' in line
    assert str(backbones['resnet18_cyclic_tiny']) in line and str(
        backbones['resnet18_sd_tiny']) in line
    assert sorted(p.name for p in runs[0].rglob('*')) == before


def test_seed_sweep_lands_apart_and_reuse_with_another_seed_is_refused(tiny_imagenet, tmp_path):
    one_epoch = ['--cfg-options', 'train_cfg.max_epochs=1', 'param_scheduler.periods=[1]',
                 'param_scheduler.restart_weights=[1]']
    proc = tool(tmp_path, 'pretrain.py', PRETRAIN, '--data-root', tiny_imagenet, '--seed', '3',
                *one_epoch)
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = tmp_path / 'work_dirs' / 'resnet18_cyclic_tiny_seed3'
    assert (first / 'backbone.pth').is_file()
    line = error_line(tool(tmp_path, 'pretrain.py', PRETRAIN, '--data-root', tiny_imagenet,
                           '--seed', '4', '--work-dir', str(first), *one_epoch))
    assert line.startswith(f'error: cannot reuse {first}') and 'seed 3' in line and 'seed 4' in line
    # the same seed and config with another learning rate: another run, refused too
    line = error_line(tool(tmp_path, 'pretrain.py', PRETRAIN, '--data-root', tiny_imagenet,
                           '--seed', '3', '--resume', *one_epoch, 'optim_wrapper.optimizer.lr=0.5'))
    assert line.startswith('error: cannot resume work_dirs/resnet18_cyclic_tiny_seed3')
    assert line.count('resolved') == 2


def test_claim_rules(tmp_path):
    config = str(tmp_path / 'a.py')
    work_dir = str(tmp_path / 'w')
    mine = run_dir.identity('pretrain', config, 0, 'h1')
    run_dir.claim(work_dir, mine, resume=False)
    run_dir.claim(work_dir, mine, resume=False)  # the same run again: a restart
    # --resume without --seed continues the recorded seed
    assert run_dir.claim(work_dir, run_dir.identity('pretrain', config, None, 'h1'),
                         resume=True)['seed'] == 0
    with pytest.raises(UserError, match='another.py'):
        run_dir.claim(work_dir, run_dir.identity('pretrain', str(tmp_path / 'another.py'), 0,
                                                 'h1'), resume=True)
    with pytest.raises(UserError, match='seed None'):  # a fresh unseeded run is another run
        run_dir.claim(work_dir, run_dir.identity('pretrain', config, None, 'h1'), resume=False)
    with pytest.raises(UserError, match=r'resolved h2\)'):  # other --cfg-options, say
        run_dir.claim(work_dir, run_dir.identity('pretrain', config, 0, 'h2'), resume=True)


def test_one_run_at_a_time_in_a_work_dir(tiny_imagenet, tmp_path):
    """A second run into a work dir whose run is still going is refused, e.g. a study
    resubmitted while its jobs run; the lock goes with the process that holds it."""
    busy = tmp_path / 'busy'
    busy.mkdir()
    holder = subprocess.Popen([sys.executable, '-c', 'import sys, time; from sd_transfer import '
                               f'lock; lock.lock({str(busy)!r}); print("locked", '
                               'flush=True); time.sleep(60)'], cwd=REPO, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        line = error_line(tool(tmp_path, 'pretrain.py', PRETRAIN, '--data-root', tiny_imagenet,
                               '--work-dir', str(busy)))
        assert f'{busy} is in use by a run that is still going (pid {holder.pid}' in line
    finally:
        holder.kill()
        holder.wait()
