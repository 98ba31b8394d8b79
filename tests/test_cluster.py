"""Runs that survive a cluster: failures and resumes every rank agrees on, a resume of another
shape refused, finished means finished.

The multi-process tests start the ranks themselves, with the variables torchrun sets (RANK,
LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and ``--launcher pytorch``: torchrun kills the
other ranks at the first failure, which would hide whether they stop by themselves (as they must
under ``srun`` without ``--kill-on-bad-exit``, or any launcher that waits).
"""
import json
import shutil
import socket
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO, run_tool, tool_env
from probes import draws_by_epoch

from sd_transfer.datasets import make_tiny_imagenet
from sd_transfer.io import file_sha256
from sd_transfer.run_dir import finished_pretraining

pytestmark = pytest.mark.slow  # trains or runs tools end to end: not in make test-quick

PROBE = 'tests/configs/resnet18_sd_tiny_probe.py'
NAN = 'tests/configs/resnet18_cyclic_tiny_nan.py'


def cycles(n):
    return [f'param_scheduler.periods={[1] * n}', f'param_scheduler.restart_weights={[1] * n}',
            f'train_cfg.max_epochs={n}']


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """100 training images: 4 steps of 32 (2 per rank of 2) per epoch."""
    root = tmp_path_factory.mktemp('data') / 'imagenet'
    make_tiny_imagenet(str(root), train_per_class=10, val_per_class=4)
    return str(root)


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def ranks(*per_rank_args, env=None, timeout=180):
    """Start ``tools/pretrain.py`` once per rank (its own arguments each); return
    ``[(exit code, stdout, stderr)]`` and the seconds until the last exited."""
    port = _free_port()
    world = len(per_rank_args)
    procs = []
    for rank, args in enumerate(per_rank_args):
        rank_env = tool_env(dict(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                                 MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                                 OMP_NUM_THREADS='1', PYTHONPATH='tests', **(env or {})))
        procs.append(subprocess.Popen([sys.executable, 'tools/pretrain.py', *map(str, args),
                                       '--launcher', 'pytorch'], cwd=REPO, env=rank_env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    start = time.time()
    try:
        results = [(p.communicate(timeout=timeout), p.returncode) for p in procs]
    finally:
        for p in procs:
            p.kill()
    return [(code, out, err) for (out, err), code in results], time.time() - start


def error_lines(text):
    return [line for line in text.splitlines() if line.startswith('error:')]


def test_nan_on_one_rank_stops_both_with_one_error(data, tmp_path):
    args = [NAN, '--work-dir', tmp_path, '--data-root', data, '--seed', '0', '--cfg-options',
            *cycles(2)]
    results, seconds = ranks(args, args, env={'SD_PROBE_NAN_AT_ITER': '3',
                                              'SD_PROBE_NAN_RANK': '1'})
    (code0, _, err0), (code1, _, err1) = results
    assert (code0, code1) == (2, 2), err0[-2000:] + err1[-2000:]
    assert len(error_lines(err0)) == 1 and error_lines(err1) == []
    assert 'non-finite loss at iteration 4 on rank 1: loss=nan' in error_lines(err0)[0]
    assert 'Traceback' not in err0 + err1
    assert seconds < 120  # start-up included; without the collective check rank 0 waits on
    # the dead rank's all-reduce (until gloo or the NCCL watchdog gives up)
    assert (tmp_path / 'last_checkpoint').read_text().strip().endswith('epoch_1.pth')
    assert not (tmp_path / 'epoch_2.pth').exists()


@pytest.fixture(scope='module')
def two_rank_run(data, tmp_path_factory):
    """A 2-process SD run of 3 one-epoch cycles, a checkpoint after each epoch, all kept."""
    work_dir = tmp_path_factory.mktemp('two_ranks')
    args = [PROBE, '--work-dir', work_dir, '--data-root', data, '--seed', '0', '--deterministic',
            '--cfg-options', *cycles(3), 'default_hooks.checkpoint.max_keep_ckpts=3']
    results, _ = ranks(args, args)
    assert [r[0] for r in results] == [0, 0], results[0][2][-3000:] + results[1][2][-3000:]
    return work_dir, args


def _copy_run(src, dst, checkpoints):
    dst.mkdir()
    for name in ('run.json', *checkpoints):
        shutil.copy(src / name, dst / name)
    (dst / 'last_checkpoint').write_text(str(dst / checkpoints[-1]))


def _probes(work_dir):
    return [json.loads((work_dir / f'probe_rank{r}.json').read_text()) for r in (0, 1)]


def test_ranks_resume_from_the_checkpoint_rank_0_chose(two_rank_run, tmp_path):
    """Rank 1 is told an older checkpoint (as after a read error on its node): rank 0's wins."""
    src, args = two_rank_run
    work_dir = tmp_path / 'w'
    _copy_run(src, work_dir, ['epoch_1.pth', 'epoch_2.pth'])
    args = [str(a).replace(str(src), str(work_dir)) for a in args]
    results, _ = ranks([*args, '--resume', work_dir / 'epoch_2.pth'],
                       [*args, '--resume', work_dir / 'epoch_1.pth'])
    assert [r[0] for r in results] == [0, 0], results[0][2][-3000:] + results[1][2][-3000:]
    rank0, rank1 = _probes(work_dir)
    per_epoch = _probes(src)[0]['iters'] // 3
    assert rank0['first_iter'] == rank1['first_iter'] == 2 * per_epoch
    assert rank0['student_param_digest'] == rank1['student_param_digest']
    # rank 0's checkpoint holds both ranks' generator states, and the resume restored them
    states = torch.load(work_dir / 'epoch_2.pth', weights_only=True)['generator_states']
    assert len(states) == 2
    assert 'random generator states' not in results[0][1] + results[0][2]


def test_ranks_that_load_other_weights_refuse_together(two_rank_run, tmp_path):
    src, args = two_rank_run
    work_dir = tmp_path / 'w'
    _copy_run(src, work_dir, ['epoch_1.pth'])
    args = [*[str(a).replace(str(src), str(work_dir)) for a in args], '--resume']
    (code0, _, err0), (code1, _, err1) = ranks(args, args, env={'SD_PROBE_PERTURB_RANK': '1'})[0]
    assert (code0, code1) == (2, 2), err0[-2000:] + err1[-2000:]
    assert len(error_lines(err0)) == 1 and error_lines(err1) == []
    assert 'ranks 1 hold another iteration or other weights than rank 0' in err0


def test_augmentation_does_not_depend_on_the_rank_layout(two_rank_run, one_rank_run):
    """Each sample's random streams are keyed by seed, epoch and dataset index: on 2 processes it
    draws what it does on 1 (mmengine seeded loader worker w of rank r with seed + r + w)."""
    two = _probes(two_rank_run[0])
    one = [json.loads((one_rank_run[0] / 'probe_rank0.json').read_text())]
    two, one = draws_by_epoch(two, two[0]['iters'] // 3), draws_by_epoch(one, one[0]['iters'] // 2)
    assert len(one) == 2 and all(len(one[epoch]) == 100 for epoch in one)
    assert {epoch: two[epoch] for epoch in one} == one


def test_resume_with_another_total_batch_is_refused(two_rank_run, tmp_path):
    """Saved by 2 processes of 32, resumed by 1: another lr and other cycle lengths."""
    src, args = two_rank_run
    work_dir = tmp_path / 'w'
    _copy_run(src, work_dir, ['epoch_1.pth'])
    before = sorted(p.name for p in work_dir.iterdir())
    proc = run_tool('tools/pretrain.py', *[str(a).replace(str(src), str(work_dir)) for a in args],
                    '--resume', env={'PYTHONPATH': 'tests'}, check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert error_lines(proc.stderr) == [
        f'error: cannot resume {work_dir}: its run trains with a total batch of 64 (2 process(es) '
        'x 32), this one with a total batch of 32 (1 process(es) x 32); run it with 2 '
        'process(es) to continue it, or choose another --work-dir']
    assert sorted(p.name for p in work_dir.iterdir()) == before


@pytest.fixture(scope='module')
def one_rank_run(data, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('one_rank')
    args = [PROBE, '--work-dir', work_dir, '--data-root', data, '--seed', '0', '--deterministic',
            '--cfg-options', *cycles(2)]
    run_tool('tools/pretrain.py', *map(str, args), env={'PYTHONPATH': 'tests'})
    return work_dir, [str(a) for a in args]


def test_resume_of_a_finished_run_changes_nothing(one_rank_run):
    work_dir, args = one_rank_run
    files = {p: file_sha256(str(p)) for p in work_dir.rglob('*') if p.is_file()}
    proc = run_tool('tools/pretrain.py', *args, '--resume', env={'PYTHONPATH': 'tests'})
    assert f'--resume: {work_dir} finished before (cycle 2 of 2, iteration ' in proc.stdout
    assert 'nothing to do' in proc.stdout
    assert {p: file_sha256(str(p)) for p in work_dir.rglob('*') if p.is_file()} == files


def test_resume_with_another_epoch_length_is_refused(one_rank_run, tmp_path):
    """The same batch on other data (a data root with fewer images): other cycle lengths."""
    src, args = one_rank_run
    work_dir = tmp_path / 'w'
    _copy_run(src, work_dir, ['epoch_1.pth'])
    fewer = tmp_path / 'imagenet'
    make_tiny_imagenet(str(fewer), train_per_class=4, val_per_class=4)
    args = [a.replace(str(src), str(work_dir)) for a in args]
    args[args.index('--data-root') + 1] = str(fewer)
    proc = run_tool('tools/pretrain.py', *args, '--resume', env={'PYTHONPATH': 'tests'},
                    check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert ('trained with a total batch of 32 (1 process(es) x 32) and 4 iterations per epoch; '
            'this run has a total batch of 32 (1 process(es) x 32) and 2 iterations per epoch'
            ) in error_lines(proc.stderr)[0]
    assert not (work_dir / 'epoch_2.pth').exists()


def test_a_schedule_that_ends_before_training_is_refused(data, tmp_path):
    proc = run_tool('tools/pretrain.py', PROBE, '--work-dir', str(tmp_path), '--data-root', data,
                    '--cfg-options', *cycles(2), 'train_cfg.max_epochs=3',
                    env={'PYTHONPATH': 'tests'}, check=False)
    assert proc.returncode == 2
    assert error_lines(proc.stderr) == [
        'error: param_scheduler: the CosineRestartLR cycles end at iteration 8, training ends at '
        'iteration 12 (3 epochs of 4 iterations); make its periods add up to '
        'train_cfg.max_epochs (or max_iters)']
    assert not list(tmp_path.glob('*.pth'))


def test_a_run_killed_in_its_final_validation_validates_on_resume(one_rank_run, data, tmp_path):
    ref, args = one_rank_run
    args = [a.replace(str(ref), str(tmp_path)) for a in args]
    killed = run_tool('tools/pretrain.py', *args, check=False,
                      env={'PYTHONPATH': 'tests', 'SD_PROBE_KILL_AT_FINAL_VAL': '1'})
    assert killed.returncode == -9
    meta = torch.load(tmp_path / 'backbone.pth', weights_only=True)['meta']
    assert (meta['cycle'], meta['num_cycles'], meta['val'], meta['finished']) == (2, 2, None, False)
    assert finished_pretraining(str(tmp_path)) is None  # not a finished backbone yet
    resumed = run_tool('tools/pretrain.py', *args, '--resume', env={'PYTHONPATH': 'tests'})
    assert 'running its final validation' in resumed.stdout
    meta = torch.load(tmp_path / 'backbone.pth', weights_only=True)['meta']
    expected = torch.load(ref / 'backbone.pth', weights_only=True)['meta']
    assert meta['finished'] and meta['val'] == expected['val']
    assert finished_pretraining(str(tmp_path))['val']['accuracy/top1'] == expected['val'][
        'accuracy/top1']
