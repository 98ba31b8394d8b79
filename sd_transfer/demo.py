"""The end-to-end demo on generated data: pretrain twice, transfer both backbones, report.

Every step is the command a user would type, printed before it runs, with its output streamed,
so the demo doubles as a walkthrough of the pipeline.
"""
import os
import os.path as osp
import shlex
import shutil
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PRETRAIN = {
    'cyclic': 'configs/pretrain/tiny/resnet18_cyclic_tiny.py',
    'sd': 'configs/pretrain/tiny/resnet18_sd_tiny.py',
}
TRANSFER = {
    'det': 'configs/transfer/tiny/faster-rcnn_r18_fpn_voc0712_tiny.py',
    'seg': 'configs/transfer/tiny/deeplabv3_r18-d8_voc12aug_tiny.py',
}
# The same commands with shorter schedules: 'quick' for the tests, 'tiny' for gpu_check --small.
_TWO_CYCLES = ['--cfg-options', 'train_cfg.max_epochs=2', 'param_scheduler.periods=[1,1]',
               'param_scheduler.restart_weights=[1,1]']
SCHEDULES = {
    'full': dict(pretrain=[], transfer=[]),
    'quick': dict(pretrain=_TWO_CYCLES, transfer=['--cfg-options', 'train_cfg.max_iters=20',
                                                 'train_cfg.val_interval=20']),
    'tiny': dict(pretrain=_TWO_CYCLES, transfer=['--cfg-options', 'train_cfg.max_iters=4',
                                                'train_cfg.val_interval=4']),
}


def run(args):
    print('\n$ ' + ' '.join(shlex.quote(a) for a in args), flush=True)
    subprocess.run([sys.executable, *args], cwd=REPO, check=True)


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
    """Run the whole pipeline into ``out``; return the path of the report.

    ``flags`` go to every training command (e.g. ``--amp --channels-last``); ``arms`` are the
    pretrainings run and transferred (cyclic baseline and SD).
    """
    start = time.time()
    fresh_out_dir(out)
    pretrain_extra = [*flags, *SCHEDULES[schedule]['pretrain']]
    transfer_extra = [*flags, *SCHEDULES[schedule]['transfer']]
    run(['tools/make_tiny_data.py', '--out', data])
    for name in arms:
        run(['tools/pretrain.py', PRETRAIN[name], '--work-dir', osp.join(out, f'pretrain_{name}'),
             '--data-root', osp.join(data, 'imagenet'), '--seed', '0', *pretrain_extra])
    for name in arms:
        backbone = osp.join(out, f'pretrain_{name}', 'backbone.pth')
        for task, config in TRANSFER.items():
            root = osp.join(data, 'VOCdevkit') + ('/VOC2012' if task == 'seg' else '')
            run(['tools/transfer.py', task, config, '--backbone', backbone,
                 '--work-dir', osp.join(out, f'{task}_{name}'), '--data-root', root,
                 '--seed', '0', *transfer_extra])
    report_dir = osp.join(out, 'report')
    run(['tools/report.py', out, '--out', report_dir])
    minutes = (time.time() - start) / 60
    print(f'\ndemo finished in {minutes:.1f} min; report: {osp.join(report_dir, "report.md")}')
    print('These numbers come from a toy task: they show the pipeline works, not that SD wins.')
    return osp.join(report_dir, 'report.md')


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(description='End-to-end demo on generated tiny data.')
    parser.add_argument('--out', default='work_dirs/demo', help='where all runs and the report go')
    parser.add_argument('--data', default='data/tiny', help='where the tiny datasets are written')
    parser.add_argument('--quick', action='store_true', help='shorter schedules (for tests)')
    args = parser.parse_args(argv)
    run_demo(args.out, args.data, 'quick' if args.quick else 'full')
