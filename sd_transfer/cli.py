"""Plumbing shared by the ``tools/*.py`` entry points: common options, config loading, launch.

The tools stay thin (argparse -> config -> Runner); everything a test needs to import lives here.
"""
import argparse
import difflib
import gc
import importlib.util
import os
import subprocess
import sys
from typing import Optional

from . import entry  # noqa: F401  # isort: skip  first: before torch and mmengine (see there)

import torch
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.dist import get_rank

from . import engine  # noqa: F401  registers the hooks and the file backend used below
from . import run_dir
from .datasets import cifar  # noqa: F401  registers LocalCIFAR10/100
from .datasets import loading  # registers CheckedLoadImageFromFile, SkippedImagesHook
from .datasets import sample_seeds
from .errors import CollectiveError, UserError
from .io import safe_torch_load
from .setting import config_hash


def add_run_args(parser: argparse.ArgumentParser,
                 work_dir_default: str = 'work_dirs/<config name>[_seed<N>]') -> None:
    """Options every tool that builds a Runner takes (training or testing)."""
    parser.add_argument('--work-dir', help='where logs, checkpoints and results go '
                        f'(default: {work_dir_default})')
    parser.add_argument('--data-root', help="replaces the config's data_root")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config keys, or add ones the config lacks (mmengine\'s '
                        'rule), except a near miss of an existing key: that is refused as a typo')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='none: one process; pytorch: under torchrun; slurm: under srun')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0, help=argparse.SUPPRESS)


# --vis NAME: mmengine's visualizer backend, and the package it imports
VIS_BACKENDS = dict(tensorboard=('TensorboardVisBackend', 'tensorboard'),
                    wandb=('WandbVisBackend', 'wandb'))


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
                        help='skip corrupt or truncated images (listed in WORK_DIR/'
                        'skipped_images.txt) instead of stopping')
    parser.add_argument('--vis', action='append', choices=sorted(VIS_BACKENDS),
                        help='log to TensorBoard or W&B too (repeat for both; needs that '
                        "package); the work dir's vis_data/scalars.json stays")
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help="scale the learning rate by effective batch / the recipe's "
                        'auto_scale_lr.base_batch_size (mmengine\'s linear scaling rule)')


def train_defaults() -> dict:
    """The training options at their defaults, for tools that only test."""
    parser = argparse.ArgumentParser(add_help=False)
    add_train_args(parser)
    return vars(parser.parse_args([]))


def add_common_args(parser: argparse.ArgumentParser, **run_args) -> None:
    add_run_args(parser, **run_args)
    add_train_args(parser)


# difflib's similarity above which a new key is taken for a typo of the key beside it:
# 'max_epoch' / 'max_epochs' 0.95, 'batchsize' / 'batch_size' 0.95; 'persistent_workers' /
# 'num_workers' 0.62 is a new key
NEAR_MISS = 0.8


def _first_missing(tree: dict, key: str, config_path: str):
    """``(i, existing)``: the first part of dotted ``key`` the config lacks and the keys beside
    it; None when ``key`` exists. What mmengine's merge cannot add (an index past a list's end,
    a key below a plain value) is refused here, not left to fail inside the merge."""
    node, parts = tree, key.split('.')
    for i, part in enumerate(parts):
        where = '.'.join(parts[:i])
        if isinstance(node, list):  # mmengine indexes lists, not tuples
            if not (part.isdigit() and int(part) < len(node)):
                raise UserError(f"--cfg-options: key '{key}': '{where}' in {config_path} is a "
                                f"list of {len(node)}, and '{part}' is no index of it")
            node = node[int(part)]
        elif isinstance(node, dict):
            if part not in node:
                return i, [k for k in node if isinstance(k, str)]
            node = node[part]
        else:
            raise UserError(f"--cfg-options: key '{key}': '{where}' in {config_path} is a "
                            f'value ({type(node).__name__}), not a dict')
    return None


def merge_cfg_options(cfg: Config, options: dict, config_path: str) -> None:
    """Merge ``--cfg-options`` as mmengine does: a key the config lacks is added (and said so),
    unless it is a near miss of a key beside it (``max_epoch`` where ``max_epochs`` is): that is
    a typo, which added would silently change nothing."""
    tree = cfg.to_dict()
    for key in options:
        missing = _first_missing(tree, key, config_path)
        if missing is None:
            continue
        i, existing = missing
        parts = key.split('.')
        close = difflib.get_close_matches(parts[i], existing, n=1, cutoff=NEAR_MISS)
        if close:
            fixed = '.'.join([*parts[:i], close[0], *parts[i + 1:]])
            raise UserError(f"--cfg-options: key '{key}' does not exist in {config_path} "
                            f"(did you mean '{fixed}'?)")
        print(f"--cfg-options: adding '{key}', which {config_path} does not set")
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


LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def rebase_data_root(cfg: Config, new_root: str, config_path: str) -> None:
    """Point every dataloader's dataset at ``new_root``, keeping paths below the old root.

    The old root is the config's top-level ``data_root`` where it has one (mmdet and mmseg
    recipes); mmpretrain's recipes set ``data_root`` only inside each dataset, so there it is the
    common folder of those. A dataset root below the old root keeps its sub-path.
    """
    roots = [os.path.normpath(node['data_root']) for loader in LOADERS
             for node in config_dicts(cfg.get(loader)) if isinstance(node.get('data_root'), str)]
    top = cfg.get('data_root')
    if isinstance(top, str):
        old = os.path.normpath(top)
    elif roots:
        old = os.path.commonpath(roots)
    else:
        raise UserError(f'{config_path}: --data-root given, but neither the config nor its '
                        "dataloaders' datasets define a data_root")
    new_root = new_root.rstrip(os.sep) or os.sep
    for node in config_dicts(cfg._cfg_dict):
        value = node.get('data_root')
        if isinstance(value, str):
            value = os.path.normpath(value)
            if value == old or value.startswith(old + os.sep):
                node['data_root'] = new_root + value[len(old):]
    if isinstance(top, str):
        cfg.data_root = new_root


def check_vis_packages(names) -> None:
    """mmengine imports a backend's package at its first use, after the run has claimed its work
    dir and built its model: say that it is missing before anything starts."""
    for name in names:
        package = VIS_BACKENDS[name][1]
        if importlib.util.find_spec(package) is None:
            raise UserError(f'--vis {name} needs the {package} package (pip install {package})')


def add_vis_backends(cfg: Config, names) -> None:
    """Add the visualizer backends ``names`` to the config's (its LocalVisBackend writes the
    scalars.json the report reads). The setting hash leaves the visualizer out."""
    visualizer = cfg.get('visualizer') or ConfigDict(type='Visualizer')
    backends = list(visualizer.get('vis_backends') or [])
    for name in names:
        backend = VIS_BACKENDS[name][0]
        if all(b.get('type') != backend for b in backends):
            backends.append(dict(type=backend))
    visualizer.vis_backends = backends
    cfg.visualizer = visualizer


def use_checked_loading(cfg: Config, skip_bad: bool, skip_log: str) -> None:
    """Swap in the checked image loader and the download-free CIFAR datasets.

    Only the training loader skips broken images inside the loop; with ``skip_bad`` the val/test
    sets leave them out as the first process finds them when the Runner builds the sets
    (:func:`~sd_transfer.datasets.loading.exclude_bad_eval_images`).
    """
    train = {id(node) for node in config_dicts(cfg.get('train_dataloader'))}
    for node in config_dicts(cfg._cfg_dict):
        if node.get('type') == 'LoadImageFromFile':
            node.update(type='CheckedLoadImageFromFile', skip_bad=skip_bad and id(node) in train,
                        skip_log=skip_log if skip_bad else '')
        elif node.get('type') in ('CIFAR10', 'CIFAR100'):
            node['type'] = 'Local' + node['type']


def unformatted(cfg: Config) -> Config:
    """``cfg`` whose text (``pretty_text``) is not run through yapf. The Runner writes that text
    into the log, ``work_dir/<config>.py`` and every checkpoint, on every rank for the log: yapf
    took 0.1 s (a tiny pretraining) to 0.7 s (DeepLabV3) of CPU a time. The text stays Python
    that reads back as the same config, one key per line. mmengine 0.10.7's ``fromfile`` drops
    its own ``format_python_code=False`` for plain (not lazy-import) configs, hence the copy."""
    return Config(cfg.to_dict(), cfg_text=cfg.text, filename=cfg.filename,
                  env_variables=cfg.env_variables, format_python_code=False)


def load_config(args, backbone: Optional[str] = None) -> Config:
    """Read the config and apply the common command-line options.

    ``backbone`` (transfer runs) names the backbone in the default work dir.
    """
    if not os.path.isfile(args.config):
        raise UserError(f'{args.config}: config file not found')
    cfg = unformatted(Config.fromfile(args.config))
    if args.cfg_options:
        merge_cfg_options(cfg, args.cfg_options, args.config)
    if args.data_root:
        rebase_data_root(cfg, args.data_root, args.config)
    if args.vis:
        check_vis_packages(args.vis)
        add_vis_backends(cfg, args.vis)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or run_dir.default_work_dir(
        args.config, args.seed, backbone)
    if args.deterministic:
        engine.prepare_deterministic_env()
    if args.seed is not None or args.deterministic:
        randomness = dict(cfg.get('randomness') or {})
        if args.seed is not None:
            randomness['seed'] = args.seed
        if args.deterministic:
            randomness['deterministic'] = True
        cfg.randomness = randomness
    if args.auto_scale_lr:
        if not (cfg.get('auto_scale_lr') or {}).get('base_batch_size'):
            raise UserError(f'--auto-scale-lr: {args.config} has no auto_scale_lr.base_batch_size '
                            '(the batch size its learning rate was set for)')
        cfg.auto_scale_lr.enable = True
    if args.amp:
        cfg.optim_wrapper.update(engine.amp_settings()[0])
    skip_log = os.path.join(cfg.work_dir, loading.SKIP_LOG)
    use_checked_loading(cfg, args.skip_bad_images, skip_log)
    hooks = list(cfg.get('custom_hooks') or [])
    hooks += [dict(type='PlainCheckpointHook'), dict(type='FiniteLossHook'),
              dict(type='RunInfoHook', amp=args.amp), dict(type='CostHook'),
              dict(type='ResumeHook'), dict(type='StopAtSignalHook'),
              dict(type='GeneratorStatesHook')]
    if args.skip_bad_images:
        hooks.append(dict(type='SkippedImagesHook', log_file=skip_log))
    if args.deterministic:
        hooks.append(dict(type='DeterminismHook'))
    if args.channels_last:
        hooks.append(dict(type='ChannelsLastHook'))
        wrapper = ddp_wrapper_cfg(cfg)
        if args.launcher != 'none' and wrapper.type == 'MMDistributedDataParallel':
            wrapper.type = 'ChannelsLastDistributedDataParallel'  # DDP built on the final layout
            cfg.model_wrapper_cfg = wrapper
    cfg.custom_hooks = hooks
    checkpoint_hook = cfg.get('default_hooks', {}).get('checkpoint')
    if checkpoint_hook and checkpoint_hook.get('type') == 'CheckpointHook':
        checkpoint_hook.backend_args = dict(backend='atomic_local')
    if args.compile:
        cfg.compile = True
    if args.resume == 'auto':
        cfg.load_from = engine.find_resumable_checkpoint(cfg.work_dir)
        # none that loads: start afresh (mmengine's own auto-resume would take the file that
        # last_checkpoint names, the one just refused)
        cfg.resume = cfg.load_from is not None
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


def launched_world_size(launcher: str) -> int:
    """The number of processes the launcher started, before any process group exists."""
    variable = dict(pytorch='WORLD_SIZE', slurm='SLURM_NTASKS').get(launcher)
    return int(os.environ.get(variable, 1)) if variable else 1


def start_run(cfg: Config, args, kind: str, backbone: Optional[dict] = None,
              teacher: Optional[dict] = None) -> bool:
    """Last steps before the Runner is built, after every input check passed.

    Claim the work dir (refused if another run recorded itself there, or is running there);
    with ``--skip-bad-images``, leave broken images out of the evaluation sets the run uses
    (pretraining validates; transfers validate and test); key the training augmentation by
    sample (:mod:`~sd_transfer.datasets.sample_seeds`); set up the launcher. Returns False,
    having written nothing, when ``--resume`` finds the run finished.
    """
    world = launched_world_size(cfg.launcher)
    per_process = cfg.train_dataloader.batch_size
    record = run_dir.identity(kind, args.config, args.seed, config_hash(cfg), backbone, teacher,
                              batch=dict(world_size=world, batch_per_process=per_process,
                                         total_batch=world * per_process))
    resume = args.resume is not None
    record = run_dir.check(cfg.work_dir, record, resume)
    done = run_dir.finished_run(kind, cfg.work_dir) if resume else None
    if done:
        print(f'--resume: {cfg.work_dir} finished before ({done}); nothing to do')
        run_dir.clear_stopped(cfg.work_dir)  # a job requeued at its end must not requeue again
        return False
    run_dir.claim(cfg.work_dir, record, resume)
    if args.skip_bad_images:
        loaders = ('val_dataloader', ) if kind == 'pretrain' else (
            'val_dataloader', 'test_dataloader')
        loading.exclude_bad_eval_images(cfg, os.path.join(cfg.work_dir, loading.SKIP_LOG),
                                        loaders)
    sample_seeds.seed_per_sample(cfg)
    setup_launcher(cfg)
    return True


def setup_launcher(cfg: Config) -> None:
    """Let mmengine launchers run on CPU too (gloo), so the multi-GPU path is testable anywhere.

    mmengine's ``init_dist`` always calls ``torch.cuda.set_device`` and wraps the model with
    ``device_ids=[local_rank]``; both fail without a GPU. The Runner skips its own init when a
    process group exists, so on CPU we create a gloo group first (from torchrun's variables, or
    from srun's as mmengine's slurm launcher reads them) and drop ``device_ids``.
    """
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    import torch.distributed as dist
    if not dist.is_initialized():
        if cfg.launcher == 'slurm':
            _torch_env_from_slurm()
        dist.init_process_group('gloo')
    cfg.model_wrapper_cfg = ddp_wrapper_cfg(cfg)
    cfg.model_wrapper_cfg.device_ids = None


def ddp_wrapper_cfg(cfg: Config) -> ConfigDict:
    """The config's ``model_wrapper_cfg``, or what mmengine wraps with when it has none."""
    return ConfigDict(cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False)))


def _torch_env_from_slurm() -> None:
    """What mmengine's ``_init_dist_slurm`` derives from srun's variables, minus the GPU."""
    if 'SLURM_PROCID' not in os.environ:
        raise UserError('--launcher slurm: SLURM_PROCID is not set (start the tool with srun)')
    nodes = os.environ['SLURM_NODELIST']
    os.environ.setdefault('MASTER_ADDR', subprocess.getoutput(
        f'scontrol show hostname {nodes} | head -n1'))
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ.update(WORLD_SIZE=os.environ['SLURM_NTASKS'], RANK=os.environ['SLURM_PROCID'],
                      LOCAL_RANK=os.environ.get('SLURM_LOCALID', '0'))


def run_main(main) -> None:
    """Call ``main()``; a :class:`UserError` becomes one line on stderr and exit code 2; a run
    stopped at SIGUSR1 with a checkpoint says so and exits with
    :data:`~sd_transfer.engine.stop_signal.RESUMABLE`.

    A :class:`CollectiveError` (and the stop) happen on every rank at once: only rank 0 prints
    them. Any other error is the raising rank's alone: it prints it, and the launcher (torchrun;
    srun with ``--kill-on-bad-exit=1``) stops the other ranks.
    """
    # The imports are done: torch, mmengine, mmpretrain and mmdet leave about 400,000 objects
    # that live as long as the process. Frozen, the garbage collector no longer walks them, in
    # the collections during the run or in those at exit, nor writes to their pages in forked
    # data loader workers (gc.freeze's docs). Measured on 2 cores, paired: a test module of short
    # tool runs 0.83 of the CPU, a two-cycle tiny pretraining run 0.97.
    gc.freeze()
    try:
        main()
    except engine.StoppedAtSignal as e:
        if get_rank() == 0:
            print(f'{e}', file=sys.stderr)
        sys.exit(engine.RESUMABLE)
    except UserError as e:
        if isinstance(e, CollectiveError) and get_rank() != 0:
            sys.exit(2)
        # Raised in a dataloader worker, the message carries the worker's traceback; the
        # useful part is its last line, after the exception's name.
        message = str(e).strip().splitlines()[-1]
        message = message.split('UserError: ', 1)[-1]
        print(f'error: {message}', file=sys.stderr)
        sys.exit(2)
