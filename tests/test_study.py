"""tools/study.py: a 2-arm x 2-seed tiny study planned, interrupted, finished, reported."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO

from sd_transfer.datasets import make_tiny_imagenet, make_tiny_voc

ARMS = ['configs/pretrain/tiny/resnet18_cyclic_tiny.py', 'configs/pretrain/tiny/resnet18_sd_tiny.py']
DET = 'configs/transfer/tiny/faster-rcnn_r18_fpn_voc0712_tiny.py'


@pytest.fixture
def study_file(tmp_path):
    """A 2-arm x 2-seed study with detection transfers, on small generated data."""
    tiny_imagenet = str(tmp_path / 'data' / 'imagenet')
    tiny_voc = str(tmp_path / 'data' / 'VOCdevkit')
    make_tiny_imagenet(tiny_imagenet, train_per_class=10, val_per_class=4)
    make_tiny_voc(tiny_voc, train_images=16, test_images=8, aug_images=8)
    path = tmp_path / 'study.py'
    path.write_text(f'''
work_dir = {str(tmp_path / 'study')!r}
data = dict(pretrain={tiny_imagenet!r}, det={tiny_voc!r}, seg={tiny_voc + '/VOC2012'!r})
pretrain = dict(configs={ARMS!r}, seeds=[0, 1],
                options=['--cfg-options', 'train_cfg.max_epochs=2', 'param_scheduler.periods=[1,1]',
                         'param_scheduler.restart_weights=[1,1]'])
transfer = dict(det=[{DET!r}], seeds=[0],
                options=['--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=2'])
slurm = dict(partition='gpu', gpus=dict(pretrain=8, det=8))
''')
    return path


def study(*args, **kwargs):
    return subprocess.run([sys.executable, 'tools/study.py', *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=900, **kwargs)


def test_plan_and_slurm_scripts(study_file, tmp_path):
    plan = study(study_file, '--dry-run')
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert '8 runs (4 pretraining, 4 detection, 0 segmentation), 0 already finished' in plan.stdout
    assert not (tmp_path / 'study').exists()
    slurm = study(study_file, '--launcher', 'slurm')
    assert slurm.returncode == 0, slurm.stderr[-2000:]
    folder = tmp_path / 'study' / 'slurm'
    submit = (folder / 'submit.sh').read_text()
    scripts = sorted(p.name for p in folder.glob('0*.sh'))
    assert len(scripts) == 8
    # each transfer waits for its own backbone's job
    assert submit.count('--dependency=afterok:${job') == 4
    assert 'job5=$(sbatch --parsable --dependency=afterok:${job1}' in submit
    first = (folder / scripts[0]).read_text()
    assert '#SBATCH -p gpu' in first and '--ntasks-per-node=8' in first
    assert 'srun python tools/pretrain.py configs/pretrain/tiny/resnet18_cyclic_tiny.py' in first
    assert first.rstrip().endswith('--resume --launcher slurm')
    assert 'export MASTER_PORT=' in first  # jobs sharing a node must not share a port
    assert 'tools/report.py' in submit and '--plan' in submit


def test_interrupted_study_resumes_without_redoing_finished_runs(study_file, tmp_path):
    proc = subprocess.Popen([sys.executable, 'tools/study.py', str(study_file)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
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
