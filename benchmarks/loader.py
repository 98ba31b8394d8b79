"""Images/s of our ImageNet training input pipeline against torchvision's on the same JPEG files.

Ours: the tiny config's train dataloader as tools/pretrain.py loads it (mmpretrain ``ImageNet``,
its train pipeline, DefaultSampler, pseudo_collate, each sample's pipeline seeded from its key),
built by mmengine's ``Runner.build_dataloader`` in the Runner's multiprocessing set-up. Theirs:
``ImageFolder`` with RandomResizedCrop, flip and ToTensor, same crop, batch size and workers. The
data are generated into a temporary folder, larger than the tiny default so that decoding and
resizing dominate. A third side is ours with mmcv's plain ``LoadImageFromFile`` instead of our
checked loader: its ratio is the cost of the broken-image check. The per-sample seeding is timed
on its own, in a loader worker and in the main process (no workers), against ours' time per
image.

    .venv/bin/python benchmarks/loader.py
"""
import os
import os.path as osp
import statistics
import tempfile
import time

import sd_transfer.entry  # noqa: F401  # isort: skip  first: before mmengine (see there)
import torch
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.utils.dl_utils import set_multi_processing
from torchvision import datasets, transforms

from common import cli_config, interleaved, parser, print_machine, ratio, report
from sd_transfer.datasets import make_tiny_imagenet
from sd_transfer.datasets.sample_seeds import SampleKey, seed_per_sample, seeded


def our_loader(data_root, batch_size, num_workers, checked=True):
    cfg = cli_config('ce', '--data-root', data_root)
    init_default_scope(cfg.default_scope)
    set_multi_processing(**cfg.env_cfg.mp_cfg)
    loader_cfg = cfg.train_dataloader
    loader_cfg.batch_size = batch_size
    if num_workers is not None:
        loader_cfg.num_workers = num_workers
    if not checked:
        loader_cfg.dataset.pipeline[0] = dict(type='LoadImageFromFile')
    crop = next(t for t in loader_cfg.dataset.pipeline if t['type'] == 'RandomResizedCrop')
    seed_per_sample(cfg)  # as tools/pretrain.py does before it builds the Runner
    return Runner.build_dataloader(loader_cfg), loader_cfg, crop


class SeedingCost(torch.utils.data.Dataset):
    """One item: microseconds per sample that the per-sample seeding takes where it is read
    (in a loader worker it only seeds; in the main process it also saves and restores the
    training's generator states)."""

    samples = 2000

    def __len__(self):
        return 1

    def __getitem__(self, _):
        keys = [SampleKey(index, 0, 1) for index in range(self.samples)]
        start = time.perf_counter()
        for key in keys:
            with seeded(key):
                pass
        return (time.perf_counter() - start) / self.samples * 1e6


def torchvision_loader(data_root, loader_cfg, crop):
    transform = transforms.Compose([
        transforms.RandomResizedCrop(crop.scale, scale=crop.crop_ratio_range),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
    ])
    dataset = datasets.ImageFolder(osp.join(data_root, 'train'), transform)
    return torch.utils.data.DataLoader(
        dataset, batch_size=loader_cfg.batch_size, shuffle=True,
        num_workers=loader_cfg.num_workers, persistent_workers=loader_cfg.persistent_workers)


def main():
    p = parser(__doc__.splitlines()[0], model_options=False)
    p.add_argument('--image-size', type=int, default=224, help='side of the generated JPEGs')
    p.add_argument('--per-class', type=int, default=40, help='generated images per class (10)')
    p.add_argument('--workers', type=int, help="loader workers (default: the config's)")
    p.add_argument('--reps', type=int, default=15, help='epochs of each loader')
    args = p.parse_args()
    if args.quick:
        args.per_class, args.reps = 10, 1
    print_machine()
    with tempfile.TemporaryDirectory() as tmp:
        data_root = osp.join(tmp, 'imagenet')
        make_tiny_imagenet(data_root, size=args.image_size, train_per_class=args.per_class,
                           val_per_class=1)
        ours, loader_cfg, crop = our_loader(data_root, args.batch_size, args.workers)
        unchecked, _, _ = our_loader(data_root, args.batch_size, args.workers, checked=False)
        theirs = torchvision_loader(data_root, loader_cfg, crop)
        print(f'{len(theirs.dataset)} JPEGs of {args.image_size} px, crop {crop.scale} px, '
              f'batch {loader_cfg.batch_size}, {loader_cfg.num_workers} workers '
              f'(persistent: {loader_cfg.persistent_workers})')

        def epoch(loader):
            def run():
                for _ in loader:
                    pass
            return lambda: run

        times = interleaved(dict(ours=epoch(ours), unchecked=epoch(unchecked),
                                 torchvision=epoch(theirs)), args.reps, 'cpu')
        print('per epoch:')
        for name, t in times.items():
            report(f'  {name}', t, len(theirs.dataset))
    print(f'load average now {os.getloadavg()[0]:.1f}; ratio: median of paired epochs')
    paired, fastest = ratio(times['unchecked'], times['ours'])  # time ratio = images/s ratio
    print(f'cost of the broken-image check, ours/unchecked images/s: {paired} (target >= 0.97; '
          f'{fastest})')
    worker = next(iter(torch.utils.data.DataLoader(SeedingCost(), batch_size=None,
                                                   num_workers=1)))
    workers = max(loader_cfg.num_workers, 1)
    per_image = statistics.median(times['ours']) * workers / len(theirs.dataset) * 1e6
    print(f'per-sample seeding: {worker:.0f} us in a loader worker ({worker / per_image:.1%} of '
          f"ours' {per_image:.0f} us per image and worker), {SeedingCost()[0]:.0f} us in the "
          'main process (no workers)')
    paired, fastest = ratio(times['torchvision'], times['ours'])
    print(f'ratio ours/torchvision images/s: {paired} (target >= 1.0; {fastest})')


if __name__ == '__main__':
    main()
