"""A study: pretraining arms x seeds, each transferred with several configs x seeds, then one report.

A study file (python, YAML or JSON, read as an mmengine config) names what to run:

    work_dir = 'work_dirs/study'
    data = dict(pretrain='data/imagenet', det='data/VOCdevkit', seg='data/VOCdevkit/VOC2012')
    pretrain = dict(configs=[...], seeds=[0, 1, 2], options=['--amp', '--auto-scale-lr'])
    transfer = dict(det=[...], seg=[...], seeds=[0], options=['--amp', '--auto-scale-lr'])
    gpus = dict(pretrain=8, det=8, seg=4)  # processes per run of each kind (0: a CPU run)
    slurm = dict(partition='PARTITION', cpus_per_task=5, time=dict(pretrain='72:00:00'))

:func:`load` turns it into runs with unique work dirs, pretraining before the transfers of its
backbone. :func:`~sd_transfer.study.local.run_here` runs them on this machine (skipping finished
ones, resuming interrupted ones; side by side on disjoint GPUs with ``--launcher pytorch``) and
writes the report; :func:`~sd_transfer.study.slurm.write_slurm` writes one sbatch script per run
and a ``submit.sh`` that chains them.
"""
import os.path as osp
from dataclasses import asdict, dataclass, field
from typing import List, Optional

from mmengine.config import Config

from ..errors import UserError
from ..io import atomic_write_json
from ..report import write_report
from ..run_dir import config_name, finished_pretraining

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
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
    gpus: object = 8  # processes per run: a number, or one per kind

    def processes(self, kind: str) -> int:
        """Processes (GPUs) per run of ``kind``; 0: a CPU run of one process."""
        return int(per_kind(self.gpus, kind) or 0)


def per_kind(value, kind: str):
    """A study setting given once for all kinds, or as ``dict(pretrain=..., det=..., seg=...)``."""
    return value.get(kind) if isinstance(value, dict) else value


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
    slurm = dict(cfg.get('slurm') or {})
    # 'gpus' once lived in the slurm dict; it says how many processes each run has, anywhere
    study = Study(path=path, work_dir=work_dir, slurm=slurm,
                  gpus=cfg.get('gpus', slurm.get('gpus', 8)))
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
