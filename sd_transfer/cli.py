"""Plumbing shared by the ``tools/*.py`` entry points: common options, config loading, launch.

The tools stay thin (argparse -> config -> Runner); everything a test needs to import lives here.
"""
import argparse
import difflib
import os
import sys

import torch
from mmengine.config import Config, ConfigDict, DictAction

from . import engine  # noqa: F401  registers the hooks and the file backend used below
from .datasets import loading  # noqa: F401  registers CheckedLoadImageFromFile
from .errors import UserError
from .io import safe_torch_load


def add_run_args(parser: argparse.ArgumentParser,
                 work_dir_default: str = 'work_dirs/<config name>') -> None:
    """Options every tool that builds a Runner takes (training or testing)."""
    parser.add_argument('--work-dir', help='where logs, checkpoints and results go '
                        f'(default: {work_dir_default})')
    parser.add_argument('--data-root', help="replaces the config's data_root")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config keys; every key must already exist in the config')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='none: one process; pytorch: under torchrun; slurm: under srun')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0, help=argparse.SUPPRESS)


def add_train_args(parser: argparse.ArgumentParser) -> None:
    """Options of the training tools."""
    parser.add_argument('--seed', type=int, help='random seed (default: the config\'s)')
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic algorithms (slower; for exact reproduction)')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision on GPU: bf16 where supported, else fp16 with loss scaling')
    parser.add_argument('--channels-last', action='store_true',
                        help='channels_last memory format for model and inputs (faster on tensor cores)')
    parser.add_argument('--compile', action='store_true', help='torch.compile the model')
    parser.add_argument('--resume', nargs='?', const='auto', metavar='CKPT',
                        help='resume from CKPT, or from the latest checkpoint in the work dir')
    parser.add_argument('--skip-bad-images', action='store_true',
                        help='log and skip corrupt or truncated images instead of stopping')


def train_defaults() -> dict:
    """The training options at their defaults, for tools that only test."""
    parser = argparse.ArgumentParser(add_help=False)
    add_train_args(parser)
    return vars(parser.parse_args([]))


def add_common_args(parser: argparse.ArgumentParser) -> None:
    add_run_args(parser)
    add_train_args(parser)


def _has_key(cfg, dotted: str) -> bool:
    node = cfg
    for part in dotted.split('.'):
        if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    return True


def _all_keys(node, prefix=''):
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix + k
            yield from _all_keys(v, prefix + k + '.')


def merge_cfg_options(cfg: Config, options: dict, config_path: str) -> None:
    """Merge ``--cfg-options``, refusing keys the config lacks: a typo must not be silently added."""
    tree = cfg.to_dict()
    for key in options:
        if not _has_key(tree, key):
            close = difflib.get_close_matches(key, list(_all_keys(tree)), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ''
            raise UserError(f"--cfg-options: key '{key}' does not exist in {config_path}{hint}")
    cfg.merge_from_dict(options)


def config_dicts(node):
    """Every dict in a config tree, outermost first."""
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from config_dicts(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from config_dicts(v)


def rebase_data_root(cfg: Config, new_root: str) -> None:
    """Point every ``data_root`` under the config's top-level ``data_root`` at ``new_root``."""
    old = cfg.get('data_root')
    if old is None:
        raise UserError("--data-root given but the config defines no top-level 'data_root'")
    old = os.path.normpath(old)
    for node in config_dicts(cfg._cfg_dict):
        value = node.get('data_root')
        if isinstance(value, str):
            value = os.path.normpath(value)
            if value == old or value.startswith(old + os.sep):
                node['data_root'] = new_root + value[len(old):]
    cfg.data_root = new_root


def use_checked_image_loading(cfg: Config, skip_bad: bool) -> None:
    """Swap every pipeline's ``LoadImageFromFile`` for ``CheckedLoadImageFromFile``."""
    for node in config_dicts(cfg._cfg_dict):
        if node.get('type') == 'LoadImageFromFile':
            node['type'] = 'CheckedLoadImageFromFile'
            node['skip_bad'] = skip_bad


def _supports_bf16() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def load_config(args, default_work_root: str = 'work_dirs') -> Config:
    """Read the config and apply the common command-line options."""
    if not os.path.isfile(args.config):
        raise UserError(f'{args.config}: config file not found')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        merge_cfg_options(cfg, args.cfg_options, args.config)
    if args.data_root:
        rebase_data_root(cfg, args.data_root)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or os.path.join(
        default_work_root, os.path.splitext(os.path.basename(args.config))[0])
    if args.seed is not None or args.deterministic:
        randomness = dict(cfg.get('randomness') or {})
        if args.seed is not None:
            randomness['seed'] = args.seed
        if args.deterministic:
            randomness['deterministic'] = True
        cfg.randomness = randomness
    if args.amp:
        if not torch.cuda.is_available():
            raise UserError('--amp needs a CUDA GPU; none is visible (drop --amp on CPU)')
        wrapper = cfg.optim_wrapper
        wrapper.type = 'AmpOptimWrapper'
        if _supports_bf16():
            wrapper.dtype = 'bfloat16'
            wrapper.loss_scale = dict(enabled=False)  # bf16 has fp32's range: no scaler needed
        else:
            wrapper.dtype = 'float16'
            wrapper.loss_scale = 'dynamic'
    use_checked_image_loading(cfg, args.skip_bad_images)
    hooks = list(cfg.get('custom_hooks') or [])
    hooks += [dict(type='PlainCheckpointHook'), dict(type='FiniteLossHook')]
    if args.channels_last:
        hooks.append(dict(type='ChannelsLastHook'))
    cfg.custom_hooks = hooks
    checkpoint_hook = cfg.get('default_hooks', {}).get('checkpoint')
    if checkpoint_hook and checkpoint_hook.get('type') == 'CheckpointHook':
        checkpoint_hook.backend_args = dict(backend='atomic_local')
    if args.compile:
        cfg.compile = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = engine.find_resumable_checkpoint(cfg.work_dir)
        if cfg.load_from is None:
            print(f'--resume: no checkpoint in {cfg.work_dir}; starting from the beginning')
    elif args.resume is not None:
        try:
            safe_torch_load(args.resume)
        except (FileNotFoundError, ValueError) as e:
            raise UserError(f'--resume: {e}') from e
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def setup_launcher(cfg: Config) -> None:
    """Let mmengine launchers run on CPU too (gloo), so the multi-GPU path is testable anywhere.

    mmengine's ``init_dist`` always calls ``torch.cuda.set_device`` and wraps the model with
    ``device_ids=[local_rank]``; both fail without a GPU. The Runner skips its own init when a
    process group exists, so on CPU we create a gloo group first and drop ``device_ids``.
    """
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    if cfg.launcher != 'pytorch':
        raise UserError(f'--launcher {cfg.launcher} without a GPU: only --launcher pytorch '
                        '(torchrun) runs on CPU')
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group('gloo')
    cfg.model_wrapper_cfg = ConfigDict(
        type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False)


def run_main(main) -> None:
    """Call ``main()``; a :class:`UserError` becomes one line on stderr and exit code 2."""
    try:
        main()
    except UserError as e:
        # Raised in a dataloader worker, the message carries the worker's traceback; the
        # useful part is its last line, after the exception's name.
        message = str(e).strip().splitlines()[-1]
        message = message.split('UserError: ', 1)[-1]
        print(f'error: {message}', file=sys.stderr)
        sys.exit(2)
