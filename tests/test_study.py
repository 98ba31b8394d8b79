"""tools/study.py: a 2-arm x 2-seed tiny study planned, interrupted, finished, reported."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, tool_env

from sd_transfer.datasets import make_tiny_imagenet, make_tiny_voc

pytestmark = pytest.mark.slow  # trains or runs tools end to end: not in make test-quick

ARMS = ['configs/pretrain/tiny/resnet18_cyclic_tiny.py', 'configs/pretrain/tiny/resnet18_sd_tiny.py']
DET = 'configs/transfer/tiny/faster-rcnn_r18_fpn_voc0712_tiny.py'


def write_study(tmp_path, body):
    """A study file into ``tmp_path``: its work dir and small generated data there, then
    ``body`` (the pretrain, transfer, ... keys)."""
    tiny_imagenet = str(tmp_path / 'data' / 'imagenet')
    tiny_voc = str(tmp_path / 'data' / 'VOCdevkit')
    make_tiny_imagenet(tiny_imagenet, train_per_class=10, val_per_class=4)
    make_tiny_voc(tiny_voc, train_images=16, test_images=8, aug_images=8)
    path = tmp_path / 'study.py'
    path.write_text(f"work_dir = {str(tmp_path / 'study')!r}\n"
                    f"data = dict(pretrain={tiny_imagenet!r}, det={tiny_voc!r}, "
                    f"seg={tiny_voc + '/VOC2012'!r})\n" + body)
    return path


@pytest.fixture
def study_file(tmp_path):
    """A 2-arm x 2-seed study with detection transfers, on small generated data."""
    return write_study(tmp_path, f'''
pretrain = dict(configs={ARMS!r}, seeds=[0, 1],
                options=['--cfg-options', 'train_cfg.max_epochs=2', 'param_scheduler.periods=[1,1]',
                         'param_scheduler.restart_weights=[1,1]'])
transfer = dict(det=[{DET!r}], seeds=[0],
                options=['--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=2'])
''')


def study(*args, **kwargs):
    kwargs.setdefault('env', tool_env())
    return subprocess.run([sys.executable, 'tools/study.py', *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=900, **kwargs)


def test_plan(study_file, tmp_path):
    plan = study(study_file, '--dry-run')
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert '8 runs (4 pretraining, 4 detection, 0 segmentation), 0 already finished' in plan.stdout
    assert not (tmp_path / 'study').exists()


def test_interrupted_study_resumes_without_redoing_finished_runs(study_file, tmp_path):
    proc = subprocess.Popen([sys.executable, 'tools/study.py', str(study_file)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env=tool_env())
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith('[3/8]'):  # two pretrainings done, the third started: kill it all
            break
    third = tmp_path / 'study' / 'pretrain' / 'resnet18_sd_tiny_seed0' / 'run.json'
    for _ in range(600):
        if third.exists():
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert any(line.startswith('[2/8] pretrain') and 'done in' in line for line in seen), seen
    again = study(study_file)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    lines = again.stdout.splitlines()
    assert [line for line in lines if 'finished before, skipped' in line] == [
        '[1/8] pretrain resnet18_cyclic_tiny_seed0: finished before, skipped',
        '[2/8] pretrain resnet18_cyclic_tiny_seed1: finished before, skipped']
    assert any(line.startswith('[3/8] pretrain resnet18_sd_tiny_seed0: resuming')
               for line in lines)
    assert 'study finished: 8 runs' in again.stdout
    with open(tmp_path / 'study' / 'report' / 'results.json') as f:
        results = json.load(f)
    det = [r for r in results['rows'] if r['table'] == 'detection'
           and r['metric'] == 'pascal_voc/AP50']
    assert sorted((r['backbone'], r['n']) for r in det) == [
        ('resnet18_cyclic_tiny (baseline) cycle 2', 2), ('resnet18_sd_tiny (SD T=3) cycle 2', 2)]
    sd = next(r for r in det if r['backbone'].startswith('resnet18_sd'))
    assert sd['delta_kind'] == 'paired' and sd['baseline'].startswith('resnet18_cyclic_tiny')
    assert '## Study: 8 of 8 planned runs finished' in (
        tmp_path / 'study' / 'report' / 'report.md').read_text()


def test_one_node_runs_side_by_side_and_keeps_going(tmp_path):
    """--launcher pytorch --gpus 2 on CPU: gloo processes stand in for GPUs. Two pretrainings
    of one process each run at once; the detection transfer of the one that finished runs with
    2 processes; the other arm fails (a NaN at its first step), its transfer is skipped, and
    --keep-going still writes the report and exits with the failure named."""
    path = write_study(tmp_path, f'''
pretrain = dict(configs=['configs/pretrain/tiny/resnet18_sd_tiny.py',
                         'tests/configs/resnet18_cyclic_tiny_nan.py'], seeds=[0],
                options=['--cfg-options', 'train_cfg.max_epochs=2', 'param_scheduler.periods=[1,1]',
                         'param_scheduler.restart_weights=[1,1]'])
transfer = dict(det=[{DET!r}], seeds=[0],
                options=['--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=2'])
gpus = dict(pretrain=1, det=2)
''')
    proc = study(path, '--launcher', 'pytorch', '--gpus', '2', '--keep-going',
                 env=tool_env(dict(PYTHONPATH='tests', SD_PROBE_NAN_AT_ITER='0')))
    out = proc.stdout
    assert proc.returncode == 2, out[-3000:] + proc.stderr[-3000:]
    lines = out.splitlines()
    started = [i for i, line in enumerate(lines) if ': starting on GPU(s)' in line]
    first_done = next(i for i, line in enumerate(lines) if ': done in ' in line or ': failed' in line)
    # both pretrainings started before either ended, on GPUs 0 and 1; the transfer on both
    assert len([i for i in started if i < first_done]) == 2
    assert any('[1/4] pretrain resnet18_sd_tiny_seed0: starting on GPU(s) 0;' in line
               for line in lines)
    assert any('[2/4] pretrain resnet18_cyclic_tiny_nan_seed0: starting on GPU(s) 1;' in line
               for line in lines)
    assert any('[3/4] det' in line and 'starting on GPU(s) 0,1;' in line for line in lines)
    failed = next(line for line in lines if line.startswith('[2/4] pretrain') and 'failed' in line)
    log = failed.split('its log: ')[1]
    assert 'non-finite loss at iteration 1' in open(log).read()  # what torchrun's child said
    assert any(line.startswith('[4/4] det') and 'skipped, its backbone failed' in line
               for line in lines)
    assert any('ETA' in line for line in lines)
    assert '1 run(s) failed (resnet18_cyclic_tiny_nan_seed0); 2 of 4 runs not finished' in (
        proc.stderr)
    det = next((tmp_path / 'study' / 'det').rglob('metrics.json'))
    assert json.loads(det.read_text())['world_size'] == 2
    assert '## Study: 2 of 4 planned runs finished' in (
        tmp_path / 'study' / 'report' / 'report.md').read_text()
