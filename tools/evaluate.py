"""Test a fine-tuned PascalVOC detector (det) or segmentor (seg) and write metrics.json.

tools/transfer.py writes its checkpoints to work_dirs/<transfer config name>/<backbone
name>-<sha256[:8]>[_seed<N>]/ (without --work-dir), and mmengine's last_checkpoint file there
names the newest:

    python tools/evaluate.py det configs/transfer/faster-rcnn_r50_fpn_1x_voc0712_sd.py \\
        $(cat work_dirs/faster-rcnn_r50_fpn_1x_voc0712_sd/resnet50_sd_8xb32_in1k_cycle4-*/last_checkpoint) \\
        --data-root data/VOCdevkit
    python tools/evaluate.py seg configs/transfer/deeplabv3_r50-d8_4xb4-20k_voc12aug-512x512_sd.py \\
        $(cat work_dirs/deeplabv3_r50-d8_4xb4-20k_voc12aug-512x512_sd/resnet50_sd_8xb32_in1k_cycle4-*/last_checkpoint) \\
        --data-root data/VOCdevkit/VOC2012

Results go to WORK_DIR/metrics.json; WORK_DIR defaults to eval_<checkpoint name> beside the
checkpoint, so the fine-tuning run's own metrics.json is kept.
"""
import argparse
import os.path as osp

from sd_transfer.cli import add_run_args, run_main, train_defaults
from sd_transfer.transfer import evaluate


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    parser.add_argument('task', choices=['det', 'seg'], help='det: mmdet config; seg: mmseg')
    parser.add_argument('config', help='the config the checkpoint was trained with')
    parser.add_argument('checkpoint', help='checkpoint written by tools/transfer.py')
    add_run_args(parser, work_dir_default='eval_<checkpoint name>/ beside the checkpoint')
    # The training options that sd_transfer.cli.load_config also reads stay at their defaults.
    args = argparse.Namespace(**train_defaults(), **vars(parser.parse_args()))
    if args.work_dir is None:
        name = osp.splitext(osp.basename(args.checkpoint))[0]
        args.work_dir = osp.join(osp.dirname(osp.abspath(args.checkpoint)), f'eval_{name}')
    return args


def main():
    args = parse_args()
    evaluate(args.task, args)


if __name__ == '__main__':
    run_main(main)
