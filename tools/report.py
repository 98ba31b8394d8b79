"""Tabulate pretraining and transfer runs: top-1, VOC mAP and mIoU per backbone, with plots.

Finds the runs in (or under) each WORK_DIR by what they wrote (backbone*.pth, metrics.json, logs),
aggregates runs of one setting over seeds (mean ± std), and writes report.md, report.tex,
results.csv, results.json and plots/*.png to --out.

    python tools/report.py work_dirs
    python tools/report.py work_dirs/resnet50_sd_8xb32_in1k work_dirs/resnet50_cyclic_8xb32_in1k \\
        work_dirs/faster-rcnn_r50_fpn_1x_voc0712_sd --out work_dirs/report_r50 \\
        --baseline resnet50_cyclic_8xb32_in1k
    python tools/report.py work_dirs/study_resnet50_voc --out work_dirs/report_study \\
        --plan work_dirs/study_resnet50_voc/plan.json
"""
import argparse
import json

from sd_transfer.cli import run_main
from sd_transfer.errors import UserError
from sd_transfer.report import write_report


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    parser.add_argument('work_dirs', nargs='+', metavar='WORK_DIR',
                        help='folders holding runs, searched recursively')
    parser.add_argument('--out', default='work_dirs/report',
                        help='where the report goes (default: work_dirs/report)')
    parser.add_argument('--baseline', metavar='LABEL',
                        help='backbone the Δ columns compare with: a label as the tables print '
                        "it, with or without ' cycle K', or a pretraining config name (default: "
                        "each row's matched baseline)")
    parser.add_argument('--plan', metavar='PLAN_JSON',
                        help="a study's plan.json (tools/study.py): list its unfinished runs")
    return parser.parse_args()


def main():
    args = parse_args()
    planned = None
    if args.plan:
        try:
            with open(args.plan) as f:
                planned = [run['work_dir'] for run in json.load(f)['runs']]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UserError(f'--plan {args.plan}: not a study plan ({e})') from e
    report, tables = write_report(args.work_dirs, args.out, args.baseline, planned)
    print(tables)
    print(f'wrote {report}')


if __name__ == '__main__':
    run_main(main)
