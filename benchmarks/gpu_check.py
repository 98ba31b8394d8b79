"""One command that says whether the GPU path works and how fast it is, in under 8 minutes.

(a) ResNet-50 training images/s at 224 px, cyclic baseline (CE) vs SD with an active teacher,
    bf16 autocast + channels_last, the two interleaved; the ratio's target is SD >= 0.75 x CE.
(b) The tiny pipeline end to end with --amp --channels-last: SD pretraining, det and seg
    transfer, report (the demo's commands, shortened).
(c) The ImageNet train loader's images/s with all of this machine's cores against (a)'s CE
    images/s: whether full-scale training would wait for its data.
Writes OUT/gpu_check.json and prints a short table.

    python benchmarks/gpu_check.py                      # on the GPU machine (make gpu-check)
    python benchmarks/gpu_check.py --device cpu --small  # CPU, small sizes: checks the script
"""
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time

import torch

from common import parser, print_machine
from loader import our_loader
from sd_overhead import per_step

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from sd_transfer.datasets import make_tiny_imagenet  # noqa: E402
from sd_transfer.demo import run_demo  # noqa: E402


def throughput(args):
    times = per_step(args, args.steps, args.reps)
    images = args.steps * args.batch_size
    ips = {side: images / statistics.median(t) for side, t in times.items()}
    return dict(ce_images_per_s=ips['ce'], sd_images_per_s=ips['sd'],
                sd_over_ce=ips['sd'] / ips['ce'])


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


def loader_speed(args, work_root, train_images_per_s):
    data_root = osp.join(work_root, 'imagenet224')
    make_tiny_imagenet(data_root, size=args.loader_image_size,
                       train_per_class=args.loader_per_class, val_per_class=1)
    workers = os.cpu_count()
    loader, _, _ = our_loader(data_root, args.batch_size, workers)
    images, start = 0, None
    for epoch in range(2):  # the first epoch starts the workers: not timed
        if epoch == 1:
            start = time.perf_counter()
        for batch in loader:
            images += len(batch['inputs']) if epoch == 1 else 0
    ips = images / (time.perf_counter() - start)
    return dict(workers=workers, images_per_s=ips, loader_bound=ips < train_images_per_s)


def main():
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(arch='resnet50', image_size=224, amp=True, channels_last=True)
    p.add_argument('--small', action='store_true',
                   help='small sizes and schedules (CPU check of the script itself)')
    p.add_argument('--steps', type=int, default=10, help='train steps per timed repetition')
    p.add_argument('--reps', type=int, default=7, help='repetitions of each side')
    p.add_argument('--out', default='work_dirs/gpu_check', help='where gpu_check.json goes')
    args = p.parse_args()
    args.loader_image_size, args.loader_per_class = 224, 64
    if args.small:
        args.arch, args.image_size, args.batch_size, args.steps, args.reps = (
            'resnet18', 32, 4, 1, 2)
        args.loader_image_size, args.loader_per_class = 64, 4
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
    print(f"| loader images/s ({ld['workers']} workers) | {ld['images_per_s']:.1f}: "
          f"{'LOADER-BOUND' if ld['loader_bound'] else 'faster than training'} |")
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
