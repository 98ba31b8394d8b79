"""One command that says whether the GPU path works and how fast it is, in under 8 minutes.

(a) ResNet-50 training images/s at 224 px, cyclic baseline (CE) vs SD with an active teacher,
    bf16 autocast + channels_last, the two interleaved; the ratio's target is SD >= 0.75 x CE.
(b) The tiny pipeline end to end with --amp --channels-last: SD pretraining, det and seg
    transfer, report (the demo's commands, shortened).
(c) The full ResNet-50 recipe's train loader (its pipeline: 224 px random crops; its 5 workers
    per process) on generated JPEGs of ImageNet's typical size (500 x 375): images/s per process
    against (a)'s CE images/s per GPU, and how many cores a node of 8 GPUs needs for loading:
    whether full-scale training would wait for its data.
Writes OUT/gpu_check.json and prints a short table.

    python benchmarks/gpu_check.py                      # on the GPU machine (make gpu-check)
    python benchmarks/gpu_check.py --device cpu --small  # CPU, small sizes: checks the script
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time

import sd_transfer.entry  # noqa: F401  # isort: skip  first: before mmengine (see there)
import torch
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from common import parser, print_machine
from sd_overhead import per_step

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from sd_transfer.cli import add_common_args, load_config  # noqa: E402
from sd_transfer.datasets import make_tiny_imagenet  # noqa: E402
from sd_transfer.demo import run_demo  # noqa: E402


def throughput(args):
    times = per_step(args, args.steps, args.reps)
    images = args.steps * args.batch_size
    ips = {side: images / statistics.median(t) for side, t in times.items()}
    return dict(ce_images_per_s=ips['ce'], sd_images_per_s=ips['sd'],
                sd_over_ce=ips['sd'] / ips['ce'],
                sd_eval_teacher_over_ce=ips['sd_eval_teacher'] / ips['ce'])


def pipeline(args, work_root):
    start = time.time()
    report = run_demo(osp.join(work_root, 'demo'), osp.join(work_root, 'data'),
                      'quick' if args.small else 'full', flags=['--amp', '--channels-last'],
                      arms=['sd'])
    with open(osp.join(osp.dirname(report), 'results.json')) as f:
        results = json.load(f)
    headline = {(r['table'], r['backbone']): r['mean'] for r in results['rows']
                if r['metric'] in ('accuracy/top1', 'pascal_voc/AP50', 'mIoU')}
    return dict(seconds=time.time() - start, report=report, incomplete=len(results['incomplete']),
                headline={f'{table}: {backbone}': value
                          for (table, backbone), value in sorted(headline.items())})


RECIPE = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                  'configs/pretrain/resnet50_cyclic_8xb32_in1k.py')
NODE_GPUS = 8  # the recipe's


def recipe_loader(data_root):
    """The full-scale recipe's train dataloader as tools/pretrain.py builds it."""
    cli = argparse.ArgumentParser()
    cli.add_argument('config')
    add_common_args(cli)
    cfg = load_config(cli.parse_args([RECIPE, '--data-root', data_root]))
    init_default_scope(cfg.default_scope)
    return Runner.build_dataloader(cfg.train_dataloader), cfg.train_dataloader


def loader_speed(args, work_root, train_images_per_s):
    """One process's loader (the recipe's workers), and the cores a node of GPUs needs."""
    data_root = osp.join(work_root, 'imagenet_photos')
    make_tiny_imagenet(data_root, size=args.loader_image_size,
                       train_per_class=args.loader_per_class, val_per_class=1)
    loader, cfg = recipe_loader(data_root)
    images, start = 0, None
    for epoch in range(2):  # the first epoch starts the workers: not timed
        if epoch == 1:
            start = time.perf_counter()
        for batch in loader:
            images += len(batch['inputs']) if epoch == 1 else 0
    per_process = images / (time.perf_counter() - start)
    cores = min(cfg.num_workers, os.cpu_count())  # the cores the workers had here
    cores_per_gpu = train_images_per_s / (per_process / cores)
    return dict(workers=cfg.num_workers, image_size=list(args.loader_image_size),
                crop=next(t['scale'] for t in cfg.dataset.pipeline
                          if t['type'] == 'RandomResizedCrop'),
                images_per_s_per_process=per_process, loader_bound=per_process < train_images_per_s,
                cores_per_gpu=cores_per_gpu, node_gpus=NODE_GPUS,
                node_cores=NODE_GPUS * (cores_per_gpu + 1))  # + each process's main thread


def main():
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(arch='resnet50', image_size=224, amp=True, channels_last=True)
    p.add_argument('--small', action='store_true',
                   help='small sizes and schedules (CPU check of the script itself)')
    p.add_argument('--steps', type=int, default=10, help='train steps per timed repetition')
    p.add_argument('--reps', type=int, default=7, help='repetitions of each side')
    p.add_argument('--out', default='work_dirs/gpu_check', help='where gpu_check.json goes')
    args = p.parse_args()
    args.loader_image_size, args.loader_per_class = (500, 375), 64
    if args.small:
        args.arch, args.image_size, args.batch_size, args.steps, args.reps = (
            'resnet18', 32, 4, 1, 2)
        args.loader_image_size, args.loader_per_class = (160, 120), 4
    print_machine(args.device)
    device = torch.cuda.get_device_name(args.device) if args.device.startswith('cuda') else 'cpu'
    result = dict(device=device, torch=torch.__version__, arch=args.arch,
                  image_size=args.image_size, batch_size=args.batch_size, amp=args.amp,
                  channels_last=args.channels_last)
    with tempfile.TemporaryDirectory() as work_root:
        result['throughput'] = throughput(args)
        result['pipeline'] = pipeline(args, work_root)
        result['loader'] = loader_speed(args, work_root,
                                        result['throughput']['ce_images_per_s'])
    del result['pipeline']['report']  # in the temporary folder, gone now
    os.makedirs(args.out, exist_ok=True)
    out = osp.join(args.out, 'gpu_check.json')
    with open(out, 'w') as f:
        json.dump(result, f, indent=2)
    t, pl, ld = result['throughput'], result['pipeline'], result['loader']
    print(f'\n| {device} | {args.arch} {args.image_size} px, batch {args.batch_size}, '
          f'amp {args.amp}, channels_last {args.channels_last} |')
    print('|---|---|')
    print(f"| CE images/s | {t['ce_images_per_s']:.1f} |")
    print(f"| SD images/s (teacher active) | {t['sd_images_per_s']:.1f} |")
    print(f"| SD / CE | {t['sd_over_ce']:.2f} (target >= 0.75) |")
    print(f"| tiny pipeline --amp --channels-last | {pl['seconds']:.0f} s, "
          f"{pl['incomplete']} incomplete runs |")
    print(f"| SD / CE with the plain eval-mode teacher | {t['sd_eval_teacher_over_ce']:.2f} |")
    print(f"| loader images/s per process ({ld['workers']} workers, {ld['crop']} px crops of "
          f"{ld['image_size'][0]}x{ld['image_size'][1]} JPEGs) | {ld['images_per_s_per_process']:.1f}:"
          f" {'LOADER-BOUND' if ld['loader_bound'] else 'faster than training'} |")
    print(f"| cores for loading at CE's speed | {ld['cores_per_gpu']:.1f} per GPU: a node of "
          f"{ld['node_gpus']} GPUs needs about {ld['node_cores']:.0f} cores |")
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
