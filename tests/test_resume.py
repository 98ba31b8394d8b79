"""Pre-emption: a run killed with SIGKILL mid-cycle and resumed equals the uninterrupted run."""
import json
import subprocess
import sys

import torch
from conftest import REPO, run_tool, tool_env

PROBE_CONFIG = 'tests/configs/resnet18_sd_tiny_probe.py'
# 4 cycles of 1 epoch; one DataLoader worker re-created per epoch, so data order and
# augmentation depend only on seed and epoch (what exact resumption needs).
SHORT = ['--cfg-options', 'param_scheduler.periods=[1,1,1,1]',
         'param_scheduler.restart_weights=[1,1,1,1]', 'train_cfg.max_epochs=4',
         'train_dataloader.persistent_workers=False']


def _args(data_root, work_dir, *extra):
    return ['tools/pretrain.py', PROBE_CONFIG, '--work-dir', str(work_dir), '--data-root',
            data_root, '--seed', '0', '--deterministic', *SHORT, *extra]


def _pretrain(data_root, work_dir, *extra, check=True):
    return run_tool(*_args(data_root, work_dir, *extra), env={'PYTHONPATH': 'tests'},
                    check=check)


def _killed(data_root, work_dir, kill_at):
    """Run until SIGKILL at ``kill_at``; return as soon as the main process is gone (its loader
    workers may still live: a scheduler or shell loop retries at once, so does this)."""
    log = work_dir.parent / f'{work_dir.name}.stderr'
    with open(log, 'w') as stderr:
        proc = subprocess.Popen([sys.executable, *_args(data_root, work_dir)], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=stderr,
                                env=tool_env(dict(PYTHONPATH='tests',
                                                  SD_PROBE_KILL_AT_ITER=str(kill_at))))
        proc.wait()
    return proc.returncode, log.read_text()


def _probe(work_dir):
    with open(work_dir / 'probe_rank0.json') as f:
        return json.load(f)


def test_sigkill_mid_cycle_then_resume_is_exact(tiny_imagenet, tmp_path):
    full, cut = tmp_path / 'full', tmp_path / 'cut'
    _pretrain(tiny_imagenet, full)
    ref = _probe(full)
    epoch = ref['iters'] // 4
    kill_at = 2 * epoch + epoch // 2  # middle of cycle 3, after the epoch-2 checkpoint

    code, stderr = _killed(tiny_imagenet, cut, kill_at)
    assert code == -9, stderr[-2000:]
    assert not (cut / 'probe_rank0.json').exists()
    _pretrain(tiny_imagenet, cut, '--resume')  # at once: the lock went with the main process
    got = _probe(cut)

    assert got['first_iter'] == 2 * epoch
    # the resumed run distils from the saved teacher of cycle 3, not a new snapshot
    assert got['teacher_digest'][0] == ref['teacher_digest'][2 * epoch]
    assert got['losses'] == ref['losses'][2 * epoch:]
    assert got['lr'] == ref['lr'][2 * epoch:]
    a = torch.load(full / 'epoch_4.pth', weights_only=True)['state_dict']
    b = torch.load(cut / 'epoch_4.pth', weights_only=True)['state_dict']
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_falls_back_when_newest_checkpoint_is_truncated(tiny_imagenet, tmp_path):
    epoch = 19  # iterations: 600 images in batches of 32
    code, stderr = _killed(tiny_imagenet, tmp_path, kill_at=2 * epoch)  # after epoch_2.pth
    assert code == -9, stderr[-2000:]
    newest = tmp_path / 'epoch_2.pth'
    with open(newest, 'r+b') as f:
        f.truncate(newest.stat().st_size // 3)
    proc = _pretrain(tiny_imagenet, tmp_path, '--resume')
    assert f'cannot resume from {newest}' in proc.stdout + proc.stderr
    rec = _probe(tmp_path)
    assert rec['first_iter'] == epoch == rec['iters'] // 4  # resumed from epoch_1.pth
