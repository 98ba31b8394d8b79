"""What a run actually ran: a hash of its resolved config, its batch and world size, its
environment. The report groups runs by these, not by config file names.

The hash covers the config after every command-line option (``--cfg-options``, ``--amp``,
``--auto-scale-lr``, ...) except what only says *where* (data roots, work dir, log and
checkpoint paths), *how it was launched or how fast it runs* (launcher, DDP wrapper,
channels_last, compile, deterministic kernels, logging and bookkeeping hooks, skipping broken
images) and the seed: runs of one setting differ only in those.
"""
import hashlib
import json
import platform

import torch

_WHERE = ('data_root', 'skip_log', 'log_file', 'checkpoint', 'work_dir', 'filename', 'skip_bad')
_TOP_LEVEL = ('launcher', 'resume', 'load_from', 'experiment_name', 'model_wrapper_cfg',
              'data_root', 'work_dir', 'compile')
_NOT_THE_SETTING = ('PlainCheckpointHook', 'FiniteLossHook', 'RunInfoHook', 'CostHook',
                    'SkippedImagesHook', 'ChannelsLastHook', 'DeterminismHook')


def _strip(node):
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items()
                if not (k in _WHERE and isinstance(v, (str, bool)))}
    if isinstance(node, (list, tuple)):
        return [_strip(v) for v in node]
    return node


def config_hash(cfg) -> str:
    """12 hex digits of the resolved config, paths, launch, speed and seed aside."""
    tree = {k: v for k, v in cfg.to_dict().items() if k not in _TOP_LEVEL}
    tree['randomness'] = {k: v for k, v in (tree.get('randomness') or {}).items()
                          if k not in ('seed', 'deterministic')}
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
