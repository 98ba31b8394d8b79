"""Fine-tune a PascalVOC detector (det) or segmentor (seg) from a pretrained backbone.

The backbone file is checked against the config's backbone before anything trains; after
training the model is tested and WORK_DIR/metrics.json written.

    python tools/transfer.py det configs/transfer/faster-rcnn_r50_fpn_1x_voc0712_sd.py \\
        --backbone work_dirs/resnet50_sd_8xb32_in1k/backbone.pth --data-root data/VOCdevkit
    torchrun --nproc_per_node=4 tools/transfer.py seg \\
        configs/transfer/deeplabv3_r50-d8_4xb4-20k_voc12aug-512x512_sd.py \\
        --backbone BACKBONE --data-root data/VOCdevkit/VOC2012 --launcher pytorch
"""
import argparse

from sd_transfer.cli import add_common_args, run_main
from sd_transfer.transfer import finetune


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    parser.add_argument('task', choices=['det', 'seg'], help='det: mmdet config; seg: mmseg')
    parser.add_argument('config', help='transfer config (configs/transfer/...)')
    parser.add_argument('--backbone', required=True,
                        help='exported backbone.pth, mmpretrain classifier checkpoint or '
                        'torchvision ResNet state dict')
    add_common_args(parser, work_dir_default='work_dirs/<config name>/<backbone name>-<sha256[:8]>'
                    '[_seed<N>]')
    return parser.parse_args()


def main():
    args = parse_args()
    finetune(args.task, args)


if __name__ == '__main__':
    run_main(main)
