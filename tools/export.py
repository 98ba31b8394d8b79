"""Export a pretrained backbone for torchvision, timm or mmdet/mmseg, verified before it is written.

BACKBONE is an exported backbone.pth / backbone_cycle<k>.pth or a pretraining checkpoint
(epoch_N.pth, which --with-head needs). The file loads strictly into the target library's model
and computes mmpretrain's features (and logits) before it is written; its meta goes to OUT.json.

    python tools/export.py work_dirs/resnet50_sd_8xb32_in1k/backbone.pth --format torchvision \\
        --out resnet50_sd.pth
    python tools/export.py $(cat work_dirs/resnet50_sd_8xb32_in1k/last_checkpoint) \\
        --format timm --with-head --out resnet50_sd.safetensors
"""
import argparse

from sd_transfer.cli import run_main
from sd_transfer.export_formats import FORMATS, export_backbone


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    parser.add_argument('backbone', help='backbone.pth or a pretraining checkpoint')
    parser.add_argument('--format', choices=FORMATS, required=True,
                        help="key names of: mmlab: mmdet's/mmseg's ResNet (as backbone.pth); "
                        'torchvision: torchvision.models.resnet* (plain ResNets); timm: '
                        "timm's resnet*, resnet*c, resnet*d")
    parser.add_argument('--with-head', action='store_true',
                        help="add the classifier head (fc.*) of a pretraining checkpoint")
    parser.add_argument('--out', required=True, help='FILE.pth or FILE.safetensors')
    return parser.parse_args()


def main():
    args = parse_args()
    info = export_backbone(args.backbone, args.format, args.out, args.with_head)
    head = f", head of {info['classes']} classes" if info['classes'] else ''
    diffs = ', '.join(f'{k} {v:.2g}' for k, v in info['max_abs_diff'].items())
    print(f"exported {args.out} for {info['model']}{head}; verified against mmpretrain's "
          f"{info['arch']}-{info['depth']}: max |diff| {diffs}; meta in {args.out}.json")


if __name__ == '__main__':
    run_main(main)
