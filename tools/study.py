"""Run a whole study from one file: pretraining arms x seeds, their transfers, the report.

    python tools/study.py configs/study/resnet50_voc.py --dry-run      # the plan and its size
    python tools/study.py configs/study/demo.py                        # run here, then report
    python tools/study.py configs/study/resnet50_voc.py --launcher pytorch --gpus 8   # one node
    python tools/study.py configs/study/resnet50_voc.py --launcher slurm   # write sbatch scripts

Runs get unique work dirs under the study's work_dir; finished runs are skipped and interrupted
ones resumed, so the same command continues a study. --launcher pytorch runs each run under
torchrun with the study's GPU count for its kind (at most --gpus), runs that fit side by side on
disjoint GPUs, their logs in WORK_DIR/logs/. With --launcher slurm nothing runs here:
WORK_DIR/slurm/submit.sh submits one job per run not already queued, transfers after their
pretraining, and the report last.
"""
import argparse

from mmengine.config import DictAction

from sd_transfer import study
from sd_transfer.cli import run_main
from sd_transfer.study.local import run_here
from sd_transfer.study.slurm import write_slurm


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    parser.add_argument('study', help='study file (configs/study/...)')
    parser.add_argument('--dry-run', action='store_true', help='show the plan, run nothing')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='none: run here, one process, one run after another; pytorch: '
                        'torchrun, runs side by side on --gpus GPUs; slurm: write sbatch scripts')
    parser.add_argument('--gpus', type=int, default=1,
                        help='--launcher pytorch: the GPUs of this machine to share (default 1)')
    parser.add_argument('--keep-going', action='store_true',
                        help='go on past a failed run (its transfers are skipped)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override keys of the study file (e.g. work_dir=... data.pretrain=...)')
    return parser.parse_args()


def main():
    args = parse_args()
    plan = study.load(args.study, args.cfg_options)
    print(study.describe(plan), flush=True)
    if args.dry_run:
        return
    if args.launcher == 'slurm':
        print(f"wrote {write_slurm(plan)}: run it on the cluster's login node")
    else:
        run_here(plan, args.launcher, args.gpus, args.keep_going)


if __name__ == '__main__':
    run_main(main)
