"""Exact runs: killed with SIGKILL and resumed, or run with other loader workers, a run computes
bit for bit what an uninterrupted one does (CPU, ``--deterministic``, one thread per run).

Pretraining: the tiny SD config, 4 one-epoch cycles of 4 iterations. Transfers: the tiny
detector and segmentor, killed after an intermediate checkpoint, with and without loader
workers. The shipped tiny configs as they are (persistent workers where they have workers),
shrunk by ``--cfg-options`` to a few iterations on small generated data.
"""
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from conftest import REPO, run_tool, tool_env
from probes import draws_by_epoch

from sd_transfer.datasets import make_tiny_imagenet, make_tiny_voc

pytestmark = pytest.mark.slow  # trains or runs tools end to end: not in make test-quick

SD = 'tests/configs/resnet18_sd_tiny_probe.py'
DET = 'tests/configs/faster-rcnn_r18_fpn_voc0712_tiny_probe.py'
SEG = 'tests/configs/deeplabv3_r18-d8_voc12aug_tiny_probe.py'
EPOCH = 4  # iterations per epoch: 100 images in batches of 32
CYCLES = ['param_scheduler.periods=[1,1,1,1]', 'param_scheduler.restart_weights=[1,1,1,1]',
          'train_cfg.max_epochs=4']
NO_WORKERS = ['train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False']
WORKERS = ['train_dataloader.num_workers=2', 'train_dataloader.persistent_workers=True']
# Bitwise comparisons need one thread count; one each lets two runs share the two cores.
ENV = {'PYTHONPATH': 'tests', 'OMP_NUM_THREADS': '1'}


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('data')
    make_tiny_imagenet(str(root / 'imagenet'), train_per_class=10, val_per_class=4)
    # Detection: 20 trainval images, 10 iterations per epoch; segmentation: 8 train + aug
    # images, 2 iterations per pass.
    make_tiny_voc(str(root / 'VOCdevkit'), size=64, train_images=8, test_images=4, aug_images=4)
    backbone = root / 'backbone.pth'
    from mmpretrain.models import ResNet
    torch.manual_seed(0)
    net = ResNet(depth=18)
    net.init_weights()
    torch.save({'state_dict': net.state_dict(), 'meta': dict(depth=18)}, backbone)
    return dict(imagenet=str(root / 'imagenet'), voc=str(root / 'VOCdevkit'),
                backbone=str(backbone))


def sd(data, work_dir, *options):
    return ['tools/pretrain.py', SD, '--work-dir', str(work_dir), '--data-root', data['imagenet'],
            '--seed', '0', '--deterministic', '--cfg-options', *CYCLES, *options]


def transfer(task, data, work_dir, *options):
    config, root, schedule = dict(
        # 14 iterations over 2 epochs, a checkpoint every 6
        det=(DET, data['voc'], ['train_cfg.max_iters=14', 'train_cfg.val_interval=14',
                                'default_hooks.checkpoint.interval=6',
                                'train_dataloader.dataset.times=1']),
        # 6 iterations over 3 passes of the InfiniteSampler, a checkpoint every 2
        seg=(SEG, data['voc'] + '/VOC2012', ['train_cfg.max_iters=6', 'train_cfg.val_interval=6',
                                            'default_hooks.checkpoint.interval=2']))[task]
    return ['tools/transfer.py', task, config, '--backbone', data['backbone'], '--work-dir',
            str(work_dir), '--data-root', root, '--seed', '0', '--deterministic',
            '--cfg-options', *schedule, *options]


def killed(args, kill_at):
    """Run until SIGKILL at iteration ``kill_at``; return as soon as the main process is gone
    (its loader workers may still live: a scheduler or shell loop retries at once, so does
    this)."""
    work_dir = args[args.index('--work-dir') + 1]
    with open(f'{work_dir}.stderr', 'w') as stderr:
        code = subprocess.call([sys.executable, *args], cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=stderr,
                               env=tool_env(dict(ENV, SD_PROBE_KILL_AT_ITER=str(kill_at))))
    with open(f'{work_dir}.stderr') as f:
        assert code == -9, f.read()[-2000:]


def run(args):
    return run_tool(*args, env=ENV)


def in_parallel(*calls):
    """``(function, args)`` pairs, two at a time."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda call: call[0](*call[1:]), calls))


def probe(work_dir):
    with open(work_dir / 'probe_rank0.json') as f:
        return json.load(f)


def weights(path):
    return torch.load(path, weights_only=True)['state_dict']


def assert_same_weights(a, b):
    a, b = weights(a), weights(b)
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


@pytest.fixture(scope='module')
def sd_runs(data, tmp_path_factory):
    """Uninterrupted: without workers, with 2 workers re-created each epoch, with 2 persistent
    workers; with 2 persistent workers, killed in the middle of cycle 3 (after epoch_2.pth) and
    resumed at once (the lock went with the main process); killed after epoch 2 again for the
    checkpoint tests."""
    root = tmp_path_factory.mktemp('sd')
    dirs = {name: root / name for name in ('workers0', 'workers2', 'full', 'cut', 'old')}
    in_parallel((run, sd(data, dirs['workers0'], *NO_WORKERS)),
                (run, sd(data, dirs['workers2'], 'train_dataloader.num_workers=2',
                         'train_dataloader.persistent_workers=False')),
                (run, sd(data, dirs['full'], *WORKERS)),
                (killed, sd(data, dirs['cut'], *WORKERS), 2 * EPOCH + EPOCH // 2),
                (killed, sd(data, dirs['old'], *WORKERS), 2 * EPOCH))
    assert not (dirs['cut'] / 'probe_rank0.json').exists()
    run(sd(data, dirs['cut'], *WORKERS, '--resume'))
    return dirs


def draws(work_dir):
    return draws_by_epoch([probe(work_dir)], EPOCH)


def test_workers_change_nothing(sd_runs):
    """mmengine seeds loader worker w with seed + w: 0 and 2 workers saw other augmentations."""
    zero = draws(sd_runs['workers0'])
    assert len(zero) == 4 and all(len(zero[epoch]) == 100 for epoch in zero)
    for other in ('workers2', 'full'):  # 2 workers, re-created every epoch or persistent
        assert draws(sd_runs[other]) == zero
        assert probe(sd_runs[other])['losses'] == probe(sd_runs['workers0'])['losses']
        assert_same_weights(sd_runs['workers0'] / 'backbone.pth', sd_runs[other] / 'backbone.pth')


def test_every_epoch_draws_fresh_augmentation(sd_runs):
    """Workers re-created every epoch were seeded alike every epoch: each epoch drew the same
    numbers (only which image got which differed)."""
    epochs = draws(sd_runs['workers2'])
    for epoch in (1, 2, 3):
        before = {x for draws in epochs[epoch - 1].values() for x in draws}
        now = {x for draws in epochs[epoch].values() for x in draws}
        assert len(now) == 300 and not now & before, epoch


def test_sigkill_mid_cycle_then_resume_is_exact(sd_runs):
    """Resumed with fresh persistent workers, which replayed the first epoch's random streams."""
    ref, got = probe(sd_runs['full']), probe(sd_runs['cut'])
    assert got['first_iter'] == 2 * EPOCH
    # the resumed run distils from the saved teacher of cycle 3, not a new snapshot
    assert got['teacher_digest'][0] == ref['teacher_digest'][2 * EPOCH]
    assert got['losses'] == ref['losses'][2 * EPOCH:]
    assert got['lr'] == ref['lr'][2 * EPOCH:]
    assert draws(sd_runs['cut']) == {
        epoch: d for epoch, d in draws(sd_runs['full']).items() if epoch >= 2}
    assert_same_weights(sd_runs['full'] / 'epoch_4.pth', sd_runs['cut'] / 'epoch_4.pth')


def test_checkpoints_carry_the_generator_states(sd_runs):
    """Plain data that loads weights-only, numpy's included (saved as a list)."""
    states = torch.load(sd_runs['cut'] / 'epoch_4.pth', weights_only=True)['generator_states']
    assert len(states) == 1 and set(states[0]) == {'torch', 'numpy', 'random'}
    name, key, *_ = states[0]['numpy']
    assert name == 'MT19937' and len(key) == 624
    assert states[0]['torch'].dtype == torch.uint8


def test_resume_falls_back_past_a_truncated_checkpoint_to_one_without_generator_states(
        sd_runs, data):
    """The newest checkpoint is unreadable, the one before it was written before checkpoints
    had generator states: resume takes that one, and says once that it cannot continue
    exactly."""
    work_dir = sd_runs['old']
    newest, older = work_dir / 'epoch_2.pth', work_dir / 'epoch_1.pth'
    checkpoint = torch.load(older, weights_only=True)
    checkpoint.pop('generator_states', None)
    torch.save(checkpoint, older)
    with open(newest, 'r+b') as f:
        f.truncate(newest.stat().st_size // 3)
    proc = run(sd(data, work_dir, *WORKERS, '--resume'))
    log = proc.stdout + proc.stderr
    assert f'cannot resume from {newest}' in log
    warnings = [line for line in log.splitlines() if 'holds no random generator states' in line]
    assert len(warnings) == 1, log[-3000:]
    assert f'--resume: {older} holds no random generator states' in warnings[0]
    assert 'not exactly as an uninterrupted run would' in warnings[0]
    rec = probe(work_dir)
    assert (rec['first_iter'], rec['iters']) == (EPOCH, 4 * EPOCH)  # resumed from epoch_1.pth


@pytest.fixture(scope='module')
def transfer_runs(data, tmp_path_factory):
    """Per task, without and with 2 persistent workers: uninterrupted, and killed after the
    intermediate checkpoint (at iteration 9 of 14 for det, 3 of 6 for seg) and resumed."""
    root = tmp_path_factory.mktemp('transfer')
    kill_at = dict(det=9, seg=3)
    first, resumes = [], []
    for task in ('det', 'seg'):
        for workers, options in (('0', NO_WORKERS), ('2', WORKERS)):
            first.append((run, transfer(task, data, root / f'{task}_full{workers}', *options)))
            args = transfer(task, data, root / f'{task}_cut{workers}', *options)
            first.append((killed, args, kill_at[task]))
            resumes.append((run, [*args, '--resume']))
    in_parallel(*first)
    in_parallel(*resumes)
    return root


def metrics(work_dir):
    return json.loads((work_dir / 'metrics.json').read_text())


@pytest.mark.parametrize('task, resumed_at', [('det', 6), ('seg', 2)])
@pytest.mark.parametrize('workers', ['0', '2'])
def test_transfer_killed_and_resumed_is_exact(transfer_runs, task, resumed_at, workers):
    """mmengine re-seeded on resume: the RPN and RoI samplers (detection), the heads' dropout
    (segmentation) and, without workers, the augmentation restarted from the seed; fresh workers
    replayed the first iterations' augmentation. The metrics of such short runs move little;
    the weights and losses show any difference."""
    full, cut = transfer_runs / f'{task}_full{workers}', transfer_runs / f'{task}_cut{workers}'
    ref, got = probe(full), probe(cut)
    assert got['first_iter'] == resumed_at
    assert got['losses'] == ref['losses'][resumed_at:]
    assert metrics(cut)['metrics'] == metrics(full)['metrics']
    assert metrics(cut)['iterations'] == metrics(full)['iterations']
    assert_same_weights(metrics(full)['checkpoint']['path'], metrics(cut)['checkpoint']['path'])


@pytest.mark.parametrize('task', ['det', 'seg'])
def test_transfer_does_not_depend_on_workers(transfer_runs, task):
    """Without workers the pipeline ran in the main process, on the training's random streams."""
    zero, two = transfer_runs / f'{task}_full0', transfer_runs / f'{task}_full2'
    assert probe(zero)['losses'] == probe(two)['losses']
    assert metrics(zero)['metrics'] == metrics(two)['metrics']
    assert_same_weights(metrics(zero)['checkpoint']['path'], metrics(two)['checkpoint']['path'])
