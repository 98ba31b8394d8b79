"""Snapshot-distillation pretraining (or its cyclic baseline) with mmengine's Runner.

    python tools/pretrain.py configs/pretrain/resnet50_sd_8xb32_in1k.py --data-root data/imagenet \\
        --auto-scale-lr
    torchrun --nproc_per_node=8 tools/pretrain.py CONFIG --launcher pytorch
    srun -p PARTITION -N 2 --ntasks-per-node=8 --gres=gpu:8 python tools/pretrain.py CONFIG --launcher slurm
"""
import argparse

from mmengine.runner import Runner

from sd_transfer.cli import add_common_args, load_config, run_main, start_run
from sd_transfer.datasets.checks import check_classification_data


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='pretraining config (configs/pretrain/...)')
    add_common_args(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = load_config(args)
    check_classification_data(cfg)
    start_run(cfg, args, 'pretrain')
    Runner.from_cfg(cfg).train()


if __name__ == '__main__':
    run_main(main)
