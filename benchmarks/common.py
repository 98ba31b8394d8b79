"""What the benchmarks share: options, machine info, interleaved timing, and the model, optimizer
and batches built exactly as ``tools/pretrain.py`` builds them, so that we time our real path."""
import argparse
import os
import platform
import statistics
import time

import sd_transfer.entry  # noqa: F401  # isort: skip  first: before mmengine (see there)
import torch
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import DATASETS, MODELS
from mmpretrain.structures import DataSample

from sd_transfer.cli import add_common_args, load_config
from sd_transfer.distill import SnapshotTeacherHook
from sd_transfer.distill.inference_teacher import COMPILE_MIN_STEPS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = dict(ce=os.path.join(ROOT, 'configs/pretrain/tiny/resnet18_cyclic_tiny.py'),
               sd=os.path.join(ROOT, 'configs/pretrain/tiny/resnet18_sd_tiny.py'))
NUM_CLASSES = 1000  # ImageNet's head, not the tiny data's 10: the size SD pretraining runs at
MMLogger.get_instance('mmengine', log_level='WARNING')  # no weight-init report per model


def parser(description, model_options=True):
    p = argparse.ArgumentParser(description=description)
    p.add_argument('--quick', action='store_true',
                   help='fewest repetitions: checks that it runs, measures nothing reliably')
    p.add_argument('--batch-size', type=int, default=32)
    if model_options:
        p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
        p.add_argument('--image-size', type=int, default=64)
        p.add_argument('--arch', choices=('resnet18', 'resnet50'), default='resnet18')
        p.add_argument('--channels-last', action='store_true',
                       help='as tools/pretrain.py --channels-last')
        p.add_argument('--amp', action='store_true',
                       help='as tools/pretrain.py --amp: bf16 autocast (GPU only)')
    return p


def cpu_model():
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    return platform.processor()


def print_machine(device='cpu'):
    print(f'cpu: {cpu_model()}, {os.cpu_count()} cores, '
          f'load average {os.getloadavg()[0]:.1f} (other processes share these cores)')
    print(f'python {platform.python_version()}, torch {torch.__version__}, '
          f'{torch.get_num_threads()} intra-op threads')
    name = torch.cuda.get_device_name(device) if torch.device(device).type == 'cuda' else 'cpu'
    print(f'device: {device} ({name})')


def sync(device):
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


def interleaved(sides, reps, device, warmup=1):
    """Seconds of each side per repetition, measured A, B, A, B, ... in this one process.

    On a shared machine the load changes by the second; alternating the sides exposes both to the
    same load, so their ratio stays meaningful when the absolute times are not. ``sides`` maps a
    name to a callable that does the untimed preparation and returns the callable to time; that
    one may return the seconds it measured itself (a part of what it runs). The first ``warmup``
    rounds are dropped.
    """
    times = {name: [] for name in sides}
    for rep in range(warmup + reps):
        for name, prepare in sides.items():
            run = prepare()
            sync(device)
            start = time.perf_counter()
            measured = run()
            sync(device)
            if rep >= warmup:
                times[name].append(measured or time.perf_counter() - start)
    return times


def ratio(num, den):
    """``num/den`` as the median of the per-repetition ratios, and as the ratio of the fastest runs.

    Each pair ran back to back under about the same load, so the first is steadier than the ratio
    of the two medians when the load changes between rounds. Under sustained contention (another
    OpenMP process on the same cores can slow a step tenfold) the fastest repetitions are the
    least disturbed: when the two figures disagree, the measurement was noisy.
    """
    paired = statistics.median(a / b for a, b in zip(num, den))
    return f'{paired:.2f}', f'fastest repetitions {min(num) / min(den):.2f}'


def report(name, seconds, items, unit='images'):
    """Print the median of one side's repetitions and its throughput."""
    med = statistics.median(seconds)
    print(f'{name}: median {med:.3f} s over {len(seconds)} repetitions '
          f'(min {min(seconds):.3f}, max {max(seconds):.3f}), {items / med:.1f} {unit}/s')


def cli_config(kind, *flags):
    """The ``ce`` (cyclic baseline) or ``sd`` tiny config as tools/pretrain.py loads it."""
    cli = argparse.ArgumentParser()
    cli.add_argument('config')
    add_common_args(cli)
    return load_config(cli.parse_args([CONFIGS[kind], *flags]))


def load_cfg(kind, args, work_dir=None):
    """``cli_config`` with this benchmark's --amp/--channels-last, architecture and classes."""
    flags = ['--amp'] * args.amp + ['--channels-last'] * args.channels_last
    cfg = cli_config(kind, *flags, *(['--work-dir', work_dir] if work_dir else []))
    if args.arch == 'resnet50':
        cfg.model.backbone.depth = 50
        cfg.model.head.in_channels = 2048
    cfg.model.head.num_classes = cfg.data_preprocessor.num_classes = NUM_CLASSES
    return cfg


def build_model(cfg, args):
    """Model and optim wrapper on ``args.device``, as the Runner and ChannelsLastHook make them."""
    model_cfg = cfg.model.copy()
    model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.to(args.device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    model.train()
    return model, build_optim_wrapper(model, cfg.optim_wrapper)


def activate_teacher(student, runs='default'):
    """Give the student a teacher as SnapshotTeacherHook does at a cycle start of a full run:
    ``runs='default'`` as the hook runs it (BN folded; compiled, as for the thousands of teacher
    steps of a real run), ``'eval'`` the plain eval-mode copy (before the teacher was folded)."""
    hook = SnapshotTeacherHook()
    hook.student = student
    teacher = hook._new_teacher()
    teacher.load_state_dict(student.state_dict())
    if runs == 'default':
        hook.runs.update(teacher, steps=COMPILE_MIN_STEPS, like=student)
        teacher = hook.runs
    student.set_teacher(teacher)
    return teacher


@DATASETS.register_module()
class RandomPacked(torch.utils.data.Dataset):
    """Random images and labels in PackInputs' format: the Runner's input with no decoding cost."""

    def __init__(self, length, image_size, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randint(0, 256, (length, 3, image_size, image_size),
                                    dtype=torch.uint8, generator=g)
        self.labels = torch.randint(0, NUM_CLASSES, (length, ), generator=g)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return dict(inputs=self.images[i],
                    data_samples=DataSample().set_gt_label(int(self.labels[i])))

    def batches(self, n, batch_size):
        """``n`` fresh batches as the Runner's default collate (pseudo_collate) gives them."""
        return [pseudo_collate([self[(k * batch_size + i) % len(self)] for i in range(batch_size)])
                for k in range(n)]
