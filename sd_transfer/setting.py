"""What a run actually ran: a hash of its resolved config, its batch and world size, its
environment. The report groups runs by these, not by config file names.

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
import platform

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


def environment(world_size: int) -> dict:
    """Package versions, device and world size: the report's header."""
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
    return dict({name: str(module.__version__) for name, module in versions.items()},
                device=device, world_size=int(world_size))
