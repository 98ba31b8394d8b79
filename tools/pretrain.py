"""Snapshot-distillation pretraining (or its cyclic baseline) with mmengine's Runner.

    python tools/pretrain.py configs/pretrain/resnet50_sd_8xb32_in1k.py --data-root data/imagenet \\
        --auto-scale-lr
    torchrun --nproc_per_node=8 tools/pretrain.py CONFIG --launcher pytorch
    srun -p PARTITION -N 2 --ntasks-per-node=4 --gres=gpu:4 python tools/pretrain.py CONFIG --launcher slurm
    python tools/pretrain.py configs/pretrain/resnet50_ban_8xb32_in1k.py --teacher TEACHER.pth \\
        --teacher-config configs/pretrain/resnet101_cyclic_8xb32_in1k.py
"""
import argparse

from sd_transfer.cli import add_common_args, run_main
from sd_transfer.pretrain import add_teacher_args, pretrain


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='pretraining config (configs/pretrain/...)')
    add_common_args(parser)
    add_teacher_args(parser)
    return parser.parse_args()


def main():
    pretrain(parse_args())


if __name__ == '__main__':
    run_main(main)
