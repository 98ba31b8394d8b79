"""A study: pretraining arms x seeds, each transferred with several configs x seeds, then one report.

A study file (python, YAML or JSON, read as an mmengine config) names what to run:

    work_dir = 'work_dirs/study'
    data = dict(pretrain='data/imagenet', det='data/VOCdevkit', seg='data/VOCdevkit/VOC2012')
    pretrain = dict(configs=[...], seeds=[0, 1, 2], options=['--amp', '--auto-scale-lr'])
    transfer = dict(det=[...], seg=[...], seeds=[0], options=['--amp', '--auto-scale-lr'])
    slurm = dict(partition='PARTITION', gpus=dict(pretrain=8, det=8, seg=4), cpus_per_task=5)

:func:`plan` turns it into runs with unique work dirs, pretraining before the transfers of its
backbone. :func:`run_local` runs them (skipping finished ones, resuming interrupted ones) and
writes the report; :func:`write_slurm` writes one sbatch script per run and a ``submit.sh`` that
chains them with ``--dependency=afterok``.
"""
import os
import os.path as osp
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import List, Optional

from mmengine.config import Config

from .errors import UserError
from .io import atomic_write_json, atomic_write_text
from .report import write_report
from .run_dir import config_name, finished_pretraining

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = dict(pretrain='tools/pretrain.py', det='tools/transfer.py', seg='tools/transfer.py')


@dataclass
class Run:
    name: str
    kind: str  # 'pretrain', 'det' or 'seg'
    args: List[str]  # after the tool's path
    work_dir: str
    after: Optional[str] = None  # the pretraining run whose backbone this transfer uses
    index: int = 0

    def finished(self) -> bool:
        if self.kind == 'pretrain':
            return finished_pretraining(self.work_dir) is not None
        return osp.isfile(osp.join(self.work_dir, 'metrics.json'))

    def command(self, launcher: str = 'none') -> List[str]:
        """The tool's command line, paths relative to the current folder as the study's are."""
        extra = [] if launcher == 'none' else ['--launcher', launcher]
        return [osp.relpath(osp.join(REPO, TOOLS[self.kind])), *self.args, '--work-dir',
                self.work_dir, '--resume', *extra]


@dataclass
class Study:
    path: str
    work_dir: str
    runs: List[Run] = field(default_factory=list)
    slurm: dict = field(default_factory=dict)


def _need(cfg, key: str, path: str):
    node = cfg
    for part in key.split('.'):
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            raise UserError(f"{path}: the study names no '{key}'")
    return node


def load(path: str, options: Optional[dict] = None) -> Study:
    """Read a study file (``options``: ``--cfg-options`` overrides) and plan its runs."""
    if not osp.isfile(path):
        raise UserError(f'{path}: study file not found')
    cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(options)
    cfg = cfg.to_dict()
    work_dir = _need(cfg, 'work_dir', path)
    pretrain, transfer, data = (_need(cfg, key, path) for key in ('pretrain', 'transfer', 'data'))
    study = Study(path=path, work_dir=work_dir, slurm=dict(cfg.get('slurm') or {}))
    for config in _need(cfg, 'pretrain.configs', path):
        if not osp.isfile(config):
            raise UserError(f'{path}: pretraining config {config} not found')
        for seed in pretrain.get('seeds', [0]):
            arm = f'{config_name(config)}_seed{seed}'
            backbone = Run(arm, 'pretrain', [config, '--data-root', data['pretrain'], '--seed',
                                            str(seed), *pretrain.get('options', [])],
                           osp.join(work_dir, 'pretrain', arm))
            study.runs.append(backbone)
            for task in ('det', 'seg'):
                for transfer_config in transfer.get(task, []):
                    for tseed in transfer.get('seeds', [0]):
                        name = f'{config_name(transfer_config)}/{arm}_seed{tseed}'
                        study.runs.append(Run(
                            name, task, [task, transfer_config, '--backbone',
                                         osp.join(backbone.work_dir, 'backbone.pth'),
                                         '--data-root', data[task], '--seed', str(tseed),
                                         *transfer.get('options', [])],
                            osp.join(work_dir, task, name), after=backbone.name))
    # dependency order: every pretraining run first, so that one arm's transfers never wait on
    # another arm's pretraining in a sequential run
    study.runs.sort(key=lambda run: run.kind != 'pretrain')
    for i, run in enumerate(study.runs, 1):
        run.index = i
    return study


def describe(study: Study) -> str:
    done = sum(run.finished() for run in study.runs)
    kinds = {kind: sum(run.kind == kind for run in study.runs) for kind in TOOLS}
    lines = [f'{study.path}: {len(study.runs)} runs ({kinds["pretrain"]} pretraining, '
             f'{kinds["det"]} detection, {kinds["seg"]} segmentation), {done} already finished; '
             f'into {study.work_dir}']
    for run in study.runs:
        state = 'finished' if run.finished() else (
            'interrupted: resumes' if osp.isdir(run.work_dir) else 'to run')
        lines.append(f'  [{run.index:>{len(str(len(study.runs)))}}/{len(study.runs)}] '
                     f'{run.kind:8} {run.name}  ({state})')
    return '\n'.join(lines)


def save_plan(study: Study) -> str:
    path = osp.join(study.work_dir, 'plan.json')
    atomic_write_json(dict(study=osp.abspath(study.path), runs=[asdict(r) for r in study.runs]),
                      path)
    return path


def report(study: Study) -> str:
    out = osp.join(study.work_dir, 'report')
    path, tables = write_report([study.work_dir], out,
                                planned=[run.work_dir for run in study.runs])
    print(tables)
    return path


def run_local(study: Study) -> str:
    """Run the study here, one run after the other; return the report's path."""
    save_plan(study)
    total = len(study.runs)
    for run in study.runs:
        tag = f'[{run.index}/{total}] {run.kind} {run.name}'
        if run.finished():
            print(f'{tag}: finished before, skipped', flush=True)
            continue
        command = [sys.executable, *run.command()]
        print(f'{tag}: {"resuming" if osp.isdir(run.work_dir) else "starting"}\n$ '
              + ' '.join(shlex.quote(c) for c in command[1:]), flush=True)
        start = time.time()
        proc = subprocess.run(command)
        if proc.returncode != 0:
            raise UserError(f'{tag} failed (exit {proc.returncode}); its log is in '
                            f'{run.work_dir}; run the study again to resume from there')
        print(f'{tag}: done in {time.time() - start:.0f} s', flush=True)
    path = report(study)
    print(f'study finished: {total} runs; report: {path}')
    return path


def write_slurm(study: Study) -> str:
    """One sbatch script per unfinished run and ``submit.sh`` chaining them; return its path."""
    save_plan(study)
    slurm = study.slurm
    folder = osp.join(study.work_dir, 'slurm')
    os.makedirs(folder, exist_ok=True)
    here = shlex.quote(os.getcwd())  # the study's relative paths start here
    submit = ['#!/usr/bin/env bash', '# Submits the study; transfers wait for their backbone.',
              'set -euo pipefail', f'cd {here}', 'ids=()']
    job_of = {}
    for run in study.runs:
        if run.finished():
            continue
        gpus = (slurm.get('gpus') or {}).get(run.kind, 8)
        script = osp.join(folder, f'{run.index:03d}_{run.kind}_{run.name.replace("/", "__")}.sh')
        header = ['#!/usr/bin/env bash', f'#SBATCH -J {run.kind}_{run.index}',
                  f"#SBATCH -p {slurm.get('partition', 'PARTITION')}",
                  f'#SBATCH -N 1 --ntasks-per-node={gpus} --gres=gpu:{gpus}',
                  f"#SBATCH --cpus-per-task={slurm.get('cpus_per_task', 5)}", '#SBATCH --requeue',
                  f'#SBATCH -o {folder}/%x.%j.out']
        if slurm.get('time'):
            header.append(f"#SBATCH -t {slurm['time']}")
        # mmengine's slurm launcher rendezvous on port 29500 unless told: two jobs sharing a node
        # would collide
        body = (f'cd {here}\nexport MASTER_PORT=$((10000 + SLURM_JOB_ID % 50000))\n'
                'srun python ') + ' '.join(
            shlex.quote(c) for c in run.command('slurm'))
        atomic_write_text('\n'.join(header) + '\n' + body + '\n', script)
        depends = f' --dependency=afterok:${{{job_of[run.after]}}}' if run.after in job_of else ''
        var = f'job{run.index}'
        job_of[run.name] = var
        submit += [f'{var}=$(sbatch --parsable{depends} {shlex.quote(script)})', f'ids+=(${var})']
    report_cmd = (f"python {osp.relpath(osp.join(REPO, 'tools', 'report.py'))} "
                  f'{shlex.quote(study.work_dir)} --out '
                  f'{shlex.quote(osp.join(study.work_dir, "report"))} --plan '
                  f'{shlex.quote(osp.join(study.work_dir, "plan.json"))}')
    submit += ['dep=$(IFS=:; echo "${ids[*]}")',
               'sbatch ${dep:+--dependency=afterany:$dep} -J report -p '
               f"{shlex.quote(slurm.get('partition', 'PARTITION'))} -N 1 --wrap "
               + shlex.quote(report_cmd),
               'echo "submitted ${#ids[@]} runs and the report"']
    path = osp.join(folder, 'submit.sh')
    atomic_write_text('\n'.join(submit) + '\n', path)
    os.chmod(path, 0o755)
    return path
