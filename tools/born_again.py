"""Born-again networks: K generations in sequence, each taught by the one before.

    python tools/born_again.py configs/pretrain/resnet50_ban_8xb32_in1k.py --generations 3 \\
        --data-root data/imagenet --auto-scale-lr
    torchrun --nproc_per_node=8 tools/born_again.py CONFIG --generations 3 --launcher pytorch

Generation k goes to WORK_DIR/gen<k> (WORK_DIR default: work_dirs/<config name>[_seed<N>]).
Run it again after an interruption: finished generations are skipped, the interrupted one is
resumed. Every other option is tools/pretrain.py's, applied to each generation.
"""
import argparse

from sd_transfer.born_again import run_generations
from sd_transfer.cli import add_common_args, run_main
from sd_transfer.pretrain import pretrain


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    parser.add_argument('config', help='a born-again config (configs/pretrain/*_ban_*)')
    parser.add_argument('--generations', type=int, default=3, help='K (default 3)')
    add_common_args(parser)
    return parser.parse_args()


def main():
    run_generations(parse_args(), pretrain)


if __name__ == '__main__':
    run_main(main)
