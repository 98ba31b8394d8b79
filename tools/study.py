"""Run a whole study from one file: pretraining arms x seeds, their transfers, the report.

    python tools/study.py configs/study/resnet50_voc.py --dry-run      # the plan and its size
    python tools/study.py configs/study/demo.py                        # run here, then report
    python tools/study.py configs/study/resnet50_voc.py --launcher slurm   # write sbatch scripts

Runs get unique work dirs under the study's work_dir; finished runs are skipped and interrupted
ones resumed, so the same command continues a study. With --launcher slurm nothing runs here:
WORK_DIR/slurm/submit.sh submits one job per run, transfers after their pretraining
(--dependency=afterok), and the report last.
"""
import argparse

from mmengine.config import DictAction

from sd_transfer import study
from sd_transfer.cli import run_main


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    parser.add_argument('study', help='study file (configs/study/...)')
    parser.add_argument('--dry-run', action='store_true', help='show the plan, run nothing')
    parser.add_argument('--launcher', choices=['none', 'slurm'], default='none',
                        help='none: run here, one run after another; slurm: write sbatch scripts')
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
        print(f'wrote {study.write_slurm(plan)}: run it on the cluster\'s login node')
    else:
        study.run_local(plan)


if __name__ == '__main__':
    run_main(main)
