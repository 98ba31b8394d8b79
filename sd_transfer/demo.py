"""The end-to-end demo on generated data: a small study (configs/study/demo.py) — the cyclic
baseline, the CE-weight control and SD pretrained, each transferred to VOC detection and
segmentation — and its report.

Every step is the command a user would type, printed before it runs, with its output streamed,
so the demo doubles as a walkthrough of the pipeline.
"""
import os
import os.path as osp
import shlex
import shutil
import subprocess
import sys

from . import study
from .study.local import run_here

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
STUDY = osp.join(REPO, 'configs', 'study', 'demo.py')
PRETRAIN = dict(cyclic='configs/pretrain/tiny/resnet18_cyclic_tiny.py',
                ceweight='configs/pretrain/tiny/resnet18_ceweight_tiny.py',
                sd='configs/pretrain/tiny/resnet18_sd_tiny.py')
# The same study on less data with shorter schedules (2 cycles, 4 transfer iterations): for the
# tests and gpu_check --small.
SCHEDULES = {
    'full': dict(data=[], pretrain=[], transfer=[]),
    'quick': dict(data=['--train-per-class', '20', '--val-per-class', '5', '--voc-train', '16',
                        '--voc-test', '8', '--voc-aug', '8'],
                  pretrain=['--cfg-options', 'train_cfg.max_epochs=2',
                            'param_scheduler.periods=[1,1]', 'param_scheduler.restart_weights=[1,1]'],
                  transfer=['--cfg-options', 'train_cfg.max_iters=4', 'train_cfg.val_interval=4']),
}
MARKER = '.sd_transfer_demo'


def fresh_out_dir(out: str) -> None:
    """Start from an empty ``out``, but never delete a folder the demo did not create."""
    if osp.isdir(out) and os.listdir(out):
        if not osp.exists(osp.join(out, MARKER)):
            raise SystemExit(f'error: {out} exists and was not written by the demo; '
                             'choose another --out')
        shutil.rmtree(out)
    os.makedirs(out)
    open(osp.join(out, MARKER), 'w').close()


def run_demo(out: str, data: str, schedule: str = 'full', flags=(), arms=tuple(PRETRAIN)) -> str:
    """Run the demo study into ``out``; return the path of the report.

    ``flags`` go to every training command (e.g. ``--amp --channels-last``); ``arms`` are the
    pretrainings run and transferred.
    """
    fresh_out_dir(out)
    command = [sys.executable, 'tools/make_tiny_data.py', '--out', data,
               *SCHEDULES[schedule]['data']]
    print('\n$ ' + ' '.join(shlex.quote(a) for a in command[1:]), flush=True)
    subprocess.run(command, cwd=REPO, check=True)
    plan = study.load(STUDY, {
        'work_dir': out, 'data.pretrain': osp.join(data, 'imagenet'),
        'data.det': osp.join(data, 'VOCdevkit'), 'data.seg': osp.join(data, 'VOCdevkit', 'VOC2012'),
        'pretrain.configs': [PRETRAIN[arm] for arm in arms],
        'pretrain.options': [*flags, *SCHEDULES[schedule]['pretrain']],
        'transfer.options': [*flags, *SCHEDULES[schedule]['transfer']]})
    print(study.describe(plan), flush=True)
    report = run_here(plan)
    print('These numbers come from a toy task: they show the pipeline works, not that SD wins.')
    return report


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(description='End-to-end demo on generated tiny data.')
    parser.add_argument('--out', default='work_dirs/demo', help='where all runs and the report go')
    parser.add_argument('--data', default='data/tiny', help='where the tiny datasets are written')
    parser.add_argument('--quick', action='store_true', help='shorter schedules (for tests)')
    args = parser.parse_args(argv)
    run_demo(args.out, args.data, 'quick' if args.quick else 'full')
