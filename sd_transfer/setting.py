"""What a run actually ran: a hash of its resolved config, its batch and world size, the data
it was evaluated on, its environment. The report groups runs by these, not by config file names.

The hash covers what changes the numbers a run computes: model, data pipelines, schedule,
optimizer, loss, batch (the config after every command-line option: ``--cfg-options``,
``--amp``, ``--auto-scale-lr``, ...). It leaves out what only says *where* (data roots, work dir,
log and checkpoint paths), *how it was launched* (launcher, DDP wrapper), *how fast it runs*
(loader workers, pinned memory, cudnn benchmark, channels_last, compile, deterministic kernels),
*how it is logged and kept* (visualizer backends such as TensorBoard, logger interval, log
processor, checkpoint interval and retention, our bookkeeping hooks, skipping broken images), the
wrappers that key every run's augmentation by sample, and the seed: runs of one setting differ
only in those, so they are seeds of one row, and a ``--resume`` may change them.
"""
import hashlib
import json
import os.path as osp
import platform
import re
import shlex
import subprocess
import sys

import torch

from .datasets.sample_seeds import SampleKeySampler, SeedPerSampleDataset

_WHERE = ('data_root', 'skip_log', 'log_file', 'checkpoint', 'work_dir', 'filename', 'skip_bad')
_SPEED = ('num_workers', 'persistent_workers', 'pin_memory', 'prefetch_factor')
_TOP_LEVEL = ('launcher', 'resume', 'load_from', 'experiment_name', 'model_wrapper_cfg',
              'data_root', 'work_dir', 'compile', 'env_cfg', 'visualizer', 'vis_backends',
              'log_processor', 'log_level')
# default_hooks that only time, log, save or draw (the param-scheduler and sampler-seed hooks
# change what is computed)
_BOOKKEEPING_DEFAULTS = ('timer', 'logger', 'checkpoint', 'visualization')
_NOT_THE_SETTING = ('PlainCheckpointHook', 'FiniteLossHook', 'RunInfoHook', 'CostHook',
                    'ResumeHook', 'StopAtSignalHook', 'SkippedImagesHook', 'ChannelsLastHook',
                    'DeterminismHook', 'GeneratorStatesHook')
# wrapper type -> the key of what it wraps (sample_seeds.seed_per_sample)
_SEEDING_WRAPPERS = {SampleKeySampler.__name__: 'sampler', SeedPerSampleDataset.__name__: 'dataset'}


def _strip(node):
    if isinstance(node, dict) and node.get('type') == 'WithoutBadImages':  # --skip-bad-images
        return _strip(node['dataset'])
    if isinstance(node, dict):
        if node.get('type') in _SEEDING_WRAPPERS:
            return _strip(node[_SEEDING_WRAPPERS[node['type']]])
        return {k: _strip(v) for k, v in node.items()
                if not (k in _WHERE and isinstance(v, (str, bool))) and k not in _SPEED}
    if isinstance(node, (list, tuple)):
        return [_strip(v) for v in node]
    return node


def config_hash(cfg) -> str:
    """12 hex digits of the resolved config, where, launch, speed, logging and seed aside."""
    tree = {k: v for k, v in cfg.to_dict().items() if k not in _TOP_LEVEL}
    tree['randomness'] = {k: v for k, v in (tree.get('randomness') or {}).items()
                          if k not in ('seed', 'deterministic')}
    tree['default_hooks'] = {k: v for k, v in (tree.get('default_hooks') or {}).items()
                             if k not in _BOOKKEEPING_DEFAULTS}
    tree['custom_hooks'] = [h for h in tree.get('custom_hooks') or []
                            if h.get('type') not in _NOT_THE_SETTING]
    text = json.dumps(_strip(tree), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def batch_note(setting: dict) -> str:
    """What a total batch other than the recipe's (``auto_scale_lr.base_batch_size``) means;
    '' for the recipe's. An iteration-based schedule (mmseg's 20k) then sees fewer images."""
    batch, base = setting.get('total_batch'), setting.get('base_batch')
    if not batch or not base or batch == base:
        return ''
    ratio = f'{max(batch, base) / min(batch, base):g}×'
    text = f"batch {batch} vs the recipe's {base}: "
    if setting.get('by_epoch'):
        return text + f"the same epochs in {ratio} {'fewer' if batch > base else 'more'} iterations"
    return text + f"sees {ratio} {'more' if batch > base else 'fewer'} images than the recipe"


def evaluation_hash(cfg) -> str:
    """12 hex digits of what decides a test's numbers besides the weights: the test loader,
    evaluator and loop, and the model's ``test_cfg`` (NMS, sliding window); paths aside.

    A re-test with another evaluator or pipeline (tools/evaluate.py) is another result of the
    same checkpoint; one with the same test config is the same result again.
    """
    tree = {k: cfg.get(k) for k in ('test_dataloader', 'test_evaluator', 'test_cfg')}
    tree['model.test_cfg'] = (cfg.get('model') or {}).get('test_cfg')
    text = json.dumps(_strip(tree), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _leaves(dataset):
    """The built datasets inside dataset wrappers (ConcatDataset, RepeatDataset, ...)."""
    if hasattr(dataset, 'datasets'):
        for child in dataset.datasets:
            yield from _leaves(child)
    elif hasattr(dataset, 'dataset'):
        yield from _leaves(dataset.dataset)
    else:
        yield dataset


def data_identity(dataset) -> dict:
    """Which data a run's numbers are on: its image count and a sha256 of its annotation files.

    Data roots are left out of the setting hash (the same data sits at other paths on other
    machines), so this is what tells a smoke test on ``data/tiny`` from the real run.
    """
    files = sorted({d.ann_file for d in _leaves(dataset)
                    if isinstance(getattr(d, 'ann_file', None), str) and osp.isfile(d.ann_file)})
    digest = hashlib.sha256()
    for file in files:
        with open(file, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                digest.update(block)
    return dict(images=len(dataset), ann_sha256=digest.hexdigest() if files else None)


_REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _run(*command) -> str:
    """A command's stdout, or None where it is missing or fails (no git, no NVIDIA driver)."""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def _git() -> dict:
    """The project's commit and whether tracked files differ from it; None outside a checkout."""
    top = _run('git', '-C', _REPO, 'rev-parse', '--show-toplevel')
    if top is None or osp.realpath(top) != osp.realpath(_REPO):
        return dict(commit=None, dirty=None)  # installed elsewhere, or inside another repo
    changes = _run('git', '-C', _REPO, 'status', '--porcelain', '--untracked-files=no')
    return dict(commit=_run('git', '-C', _REPO, 'rev-parse', 'HEAD'),
                dirty=None if changes is None else bool(changes))


def _nvidia_driver() -> str:
    try:
        with open('/proc/driver/nvidia/version') as f:
            found = re.search(r'Kernel Module\s+(\S+)', f.read())
        if found:
            return found.group(1)
    except OSError:
        pass
    out = _run('nvidia-smi', '--query-gpu=driver_version', '--format=csv,noheader')
    return out.splitlines()[0].strip() if out else None


def environment(world_size: int) -> dict:
    """Package versions, device, world size, CUDA stack, code version and command line.

    The report's header groups runs by the versions; results.json keeps all of it per run
    (CUDA, cuDNN and driver are None on CPU).
    """
    import mmcv
    import mmdet
    import mmengine
    import mmpretrain
    import mmseg
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else (
        f'CPU ({platform.processor() or platform.machine()})')
    # str(): torch.__version__ is a TorchVersion, which weights-only loading refuses
    versions = dict(torch=torch, mmengine=mmengine, mmcv=mmcv, mmpretrain=mmpretrain, mmdet=mmdet,
                    mmseg=mmseg)
    gpu = torch.cuda.is_available()
    git = _git()
    return dict({name: str(module.__version__) for name, module in versions.items()},
                device=device, world_size=int(world_size),
                cuda=torch.version.cuda if gpu else None,
                cudnn=torch.backends.cudnn.version() if gpu else None,
                driver=_nvidia_driver() if gpu else None,
                git_commit=git['commit'], git_dirty=git['dirty'], command=shlex.join(sys.argv))
