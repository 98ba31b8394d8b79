"""tools/study.py --launcher slurm against a real Slurm (tests/slurm.py: Debian's slurm-wlm 22.05,
one node with this machine's cores), not against the text of its scripts.

Four tiny studies go into the queue together (CPU jobs of one core: ``gpus`` 0):
- ``plain``: SD pretraining and a detection transfer, uninterrupted: the reference;
- ``requeued``: the same, its pretraining job requeued by ``scontrol requeue`` halfway, and the
  study submitted a second time while its jobs are queued or running;
- ``limited``: the same pretraining with a one-minute time limit: Slurm's warning signal makes it
  checkpoint, stop and requeue itself, until it is done;
- ``failing``: a pretraining that fails; its transfer is cancelled, its report still written.

What it pins of Slurm 22.05: sbatch's ``--parsable``, ``--dependency=afterok`` with
``--kill-on-invalid-dep=yes``, ``afterany``, ``--signal=B:USR1@S`` (to the batch shell, which
forwards it through srun to the tasks), ``scontrol requeue`` of a running job (it restarts under
the same id after the credential lifetime, here 10 s), ``squeue -n`` by job name, and srun
without an inherited ``--cpus-per-task`` (the scripts pass it).
"""
import json
import os
import re
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO, tool_env
from slurm import Slurm

from sd_transfer.datasets import make_tiny_imagenet, make_tiny_voc

pytestmark = pytest.mark.slow  # trains or runs tools end to end: not in make test-quick

ARM = 'tests/configs/resnet18_sd_tiny_probe.py'  # the tiny SD config and a probe hook
DET = 'configs/transfer/tiny/faster-rcnn_r18_fpn_voc0712_tiny.py'
# Two cycles of one epoch. With a 2-minute limit and the warning 119 s before it, Slurm sends it
# at its first time-limit check (every 30 s): the probe stretches the limited run's epochs to
# 35 s, so the first job gets it in epoch 1 and stops after it; the requeued job trains epoch 2,
# the last (no stop there), in time.
EPOCHS = 2
MIN_EPOCH_SECONDS = 35
# exact resume of pretraining needs workers re-created each epoch (until per-sample seeds)
PRETRAIN = ['--deterministic', '--cfg-options', f'train_cfg.max_epochs={EPOCHS}',
            f'param_scheduler.periods={[1] * EPOCHS}',
            f'param_scheduler.restart_weights={[1] * EPOCHS}',
            'train_dataloader.persistent_workers=False', 'default_hooks.checkpoint.interval=1']
TRANSFER = ['--cfg-options', 'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
            'default_hooks.checkpoint.interval=4']


def write_study(root, name, data, pretrain_options=PRETRAIN, transfers=True, time_limit=None):
    slurm = dict(partition='cpu', gpus=0, cpus_per_task=1, signal_seconds=119)
    if time_limit:
        slurm['time'] = time_limit
    path = root / f'{name}.py'
    path.write_text(f'''
work_dir = {str(root / name)!r}
data = dict(pretrain={data['imagenet']!r}, det={data['voc']!r}, seg={data['voc'] + '/VOC2012'!r})
pretrain = dict(configs=[{ARM!r}], seeds=[0], options={list(pretrain_options)!r})
transfer = dict(det={[DET] if transfers else []!r}, seeds=[0], options={TRANSFER!r})
slurm = {slurm!r}
''')
    return path


def study(cluster, path, *args):
    return subprocess.run([sys.executable, 'tools/study.py', str(path), *args], cwd=REPO,
                          env=cluster.env, capture_output=True, text=True, timeout=300)


def submit(cluster, path, **env):
    """``tools/study.py --launcher slurm``, then the submit.sh it wrote: (its output, stderr).
    The jobs get the environment submit.sh ran in (sbatch's default), plus ``env``."""
    wrote = study(cluster, path, '--launcher', 'slurm')
    assert wrote.returncode == 0, wrote.stderr[-3000:]
    script = path.parent / path.stem / 'slurm' / 'submit.sh'
    proc = subprocess.run(['bash', str(script)], cwd=REPO, env=dict(cluster.env, **env),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return wrote.stdout + proc.stdout, proc.stderr


def _wait_for(condition, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if condition():
            return
        time.sleep(0.5)
    raise TimeoutError(what)


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    slurm = Slurm(tmp_path_factory.mktemp('slurm')).start()
    # one thread per one-CPU job; the probe hook importable
    slurm.env.update(tool_env(dict(OMP_NUM_THREADS='1', PYTHONPATH='tests')))
    yield slurm
    slurm.stop()


@pytest.fixture(scope='module')
def studies(cluster, tmp_path_factory):
    root = tmp_path_factory.mktemp('studies')
    data = dict(imagenet=str(root / 'data' / 'imagenet'), voc=str(root / 'data' / 'VOCdevkit'))
    make_tiny_imagenet(data['imagenet'], train_per_class=20, val_per_class=4)
    make_tiny_voc(data['voc'], train_images=16, test_images=8, aug_images=8)
    paths = dict(  # the longest first: two jobs run at once
        limited=write_study(root, 'limited', data, transfers=False, time_limit='2'),
        plain=write_study(root, 'plain', data),
        requeued=write_study(root, 'requeued', data),
        failing=write_study(root, 'failing', dict(data, imagenet=str(root / 'nowhere'))))
    out = {name: submit(cluster, path, **({'SD_PROBE_MIN_EPOCH_SECONDS': str(MIN_EPOCH_SECONDS)}
                                          if name == 'limited' else {}))
           for name, path in paths.items()}

    # requeue the running pretraining of 'requeued' in its second epoch
    pretrain_dir = root / 'requeued' / 'pretrain' / 'resnet18_sd_tiny_probe_seed0'
    _wait_for(lambda: (pretrain_dir / 'epoch_1.pth').is_file(), 240, 'no epoch_1.pth')
    name = next(line.split()[-1] for line in _script(root / 'requeued').read_text().splitlines()
                if line.startswith('#SBATCH -J '))
    job = cluster.queue()[name][0]
    cluster.run('scontrol', 'requeue', str(job))
    out['again'] = submit(cluster, paths['requeued'])  # while its jobs are queued or running
    cluster.wait_idle(600)
    return dict(root=root, paths=paths, out=out, requeued_job=job, cluster=cluster)


def _script(study_dir):
    return next((study_dir / 'slurm').glob('001_*.sh'))


def _backbone(root, name):
    return torch.load(root / name / 'pretrain' / 'resnet18_sd_tiny_probe_seed0' / 'backbone.pth',
                      weights_only=True)


def _det_metrics(root, name):
    path = next((root / name / 'det').rglob('metrics.json'))
    return json.loads(path.read_text())['metrics']


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_study_runs_to_its_report(studies):
    root = studies['root']
    meta = _backbone(root, 'plain')['meta']
    assert meta['finished'] and meta['cycle'] == EPOCHS
    assert _det_metrics(root, 'plain')['pascal_voc/mAP'] >= 0
    report = (root / 'plain' / 'report' / 'report.md').read_text()
    assert '## Study: 2 of 2 planned runs finished' in report
    # every job logged under the study's slurm/ folder, the report's too; nothing in the checkout
    logs = sorted(p.name for p in (root / 'plain' / 'slurm').glob('*.out'))
    assert len(logs) == 3 and any(name.startswith('report.') for name in logs), logs
    assert not [p for p in os.listdir(REPO) if p.startswith('slurm-')]


def test_a_requeued_job_ends_as_the_uninterrupted_study(studies):
    root, cluster = studies['root'], studies['cluster']
    job = cluster.job(studies['requeued_job'])
    assert job['JobState'] == 'COMPLETED' and int(job['Restarts']) >= 1, job
    assert _same_weights(_backbone(root, 'requeued')['state_dict'],
                         _backbone(root, 'plain')['state_dict'])
    assert _det_metrics(root, 'requeued') == _det_metrics(root, 'plain')


def test_a_second_submission_submits_nothing_new(studies):
    out, err = studies['out']['again']
    assert '0 run(s) submitted' in out, out + err
    assert err.count('already queued or running as job') == 2, err  # the pretraining, the det


def test_a_time_limit_requeues_the_run_until_it_is_done(studies):
    root, cluster = studies['root'], studies['cluster']
    log = '\n'.join(p.read_text() for p in (root / 'limited' / 'slurm').glob('001_*.out'))
    assert 'stopped at SIGUSR1 after iteration' in log and 'requeued' in log, log[-3000:]
    job_id = int(next((root / 'limited' / 'slurm').glob('001_*.out')).name.split('.')[-2])
    job = cluster.job(job_id)
    assert job['JobState'] == 'COMPLETED' and int(job['Restarts']) >= 1, job
    assert _same_weights(_backbone(root, 'limited')['state_dict'],
                         _backbone(root, 'plain')['state_dict'])


def test_a_failed_pretraining_cancels_its_transfer_and_is_reported(studies):
    root, cluster = studies['root'], studies['cluster']
    logs = {p.name: p.read_text() for p in (root / 'failing' / 'slurm').glob('*.out')}
    assert any('error: ' in text and 'nowhere' in text for text in logs.values()), logs
    submitted = studies['out']['failing'][1]
    transfer_job = int(re.search(r'002_\S+: submitted as job (\d+), after job', submitted).group(1))
    assert cluster.job(transfer_job)['JobState'] == 'CANCELLED'  # not pending for ever
    report = (root / 'failing' / 'report' / 'report.md').read_text()
    assert '## Study: 0 of 2 planned runs finished' in report
    assert 'resnet18_sd_tiny_probe_seed0' in report
