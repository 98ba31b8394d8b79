"""Fine-tune a VOC detector / segmentor from a verified backbone, test it, write metrics.json."""
import datetime
import json
import os.path as osp

import torch
from mmdet.datasets import VOCDataset
from mmengine.dist import get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from ..cli import config_dicts, load_config, setup_launcher, start_run
from ..datasets import seg_masks  # noqa: F401  registers CheckedLoadAnnotations
from ..datasets.checks import check_voc_detection
from ..errors import UserError
from ..io import atomic_torch_save, atomic_write_json, file_sha256, safe_torch_load
from ..run_dir import backbone_name
from ..setting import data_identity, environment, evaluation_hash
from .backbone import check_state_dict, read_backbone, verify_backbone
from .kernel_inputs import SWAPS as KERNEL_SAFE_SWAPS

# task -> (OpenMMLab scope of its configs, headline metric). The detection configs evaluate at IoU
# 0.50:0.95, so mmdet's 'mAP' is the mean over those; AP50 (VOC07 11-point) stays the headline.
TASKS = dict(det=('mmdet', 'pascal_voc/AP50'), seg=('mmseg', 'mIoU'))


def prepare_config(task: str, args, loaders, backbone: str = None):
    """Load the config, check it suits the task and the ``loaders``' data exist, pick the norm."""
    cfg = load_config(args, backbone)
    scope = TASKS[task][0]
    if cfg.get('default_scope') != scope:
        raise UserError(f"{args.config}: not an {scope} config (default_scope "
                        f"{cfg.get('default_scope')!r}), so not for task '{task}'")
    for loader in loaders:
        check_data(cfg.get(loader), args.config)
    if task == 'seg':
        check_seg_masks(cfg)
    else:
        for node in config_dicts(cfg.model):  # see sd_transfer/transfer/kernel_inputs.py
            if node.get('type') in KERNEL_SAFE_SWAPS:
                node['type'] = KERNEL_SAFE_SWAPS[node['type']]
    choose_norm(cfg)
    return cfg


def check_data(loader_cfg, config_path: str) -> None:
    """Fail now, not after hours of training, on missing split lists or malformed VOC XML."""
    for node in config_dicts(loader_cfg):
        data_root, ann_file = node.get('data_root', ''), node.get('ann_file')
        if isinstance(ann_file, str) and ann_file:
            path = osp.join(data_root, ann_file)
            if not osp.isfile(path):
                raise UserError(f'{path}: no such file (data_root {data_root!r} of '
                                f'{config_path}; set it with --data-root)')
        if node.get('type') == 'VOCDataset':
            check_voc_detection(node, VOCDataset.METAINFO['classes'])


def check_seg_masks(cfg) -> None:
    """Make every segmentation pipeline check its masks' values against the class count."""
    num_classes = cfg.model.decode_head.num_classes
    for node in config_dicts(cfg._cfg_dict):
        if node.get('type') == 'LoadAnnotations':
            node.update(type='CheckedLoadAnnotations', num_classes=num_classes)


def choose_norm(cfg) -> None:
    """SyncBN when training on several GPUs, BN otherwise.

    Recipes say SyncBN (mmseg) or BN (mmdet, whose backbone BN is frozen anyway); one process
    gains nothing from SyncBN, and torch's SyncBN cannot train on CPU, even under torchrun.
    """
    norm = 'SyncBN' if cfg.launcher != 'none' and torch.cuda.is_available() else 'BN'
    for node in config_dicts(cfg.model):
        norm_cfg = node.get('norm_cfg')
        if isinstance(norm_cfg, dict) and norm_cfg.get('type') in ('BN', 'SyncBN'):
            norm_cfg['type'] = norm


class BackboneProvenanceHook(Hook):
    """Record the backbone's origin in every checkpoint, so evaluate.py can report it too."""

    def __init__(self, backbone: dict):
        self.backbone = backbone

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})['backbone'] = self.backbone


def finetune(task: str, args) -> dict:
    """Verify ``args.backbone``, fine-tune ``args.config`` from it, test, write metrics.json.

    Returns the metrics record (None on ranks other than the first, or when ``--resume`` found
    the run finished).
    """
    state, meta = read_backbone(args.backbone)
    sha256 = file_sha256(args.backbone)
    cfg = prepare_config(task, args, ('train_dataloader', 'val_dataloader', 'test_dataloader'),
                         backbone=backbone_name(args.backbone, meta, sha256))
    count = verify_backbone(state, meta, cfg.model.backbone, task, args.backbone)
    backbone = dict(path=osp.abspath(args.backbone), sha256=sha256, tensors=count,
                    meta=_plain(meta))
    if not start_run(cfg, args, task, backbone):
        return None
    # Train from a copy of exactly what was verified. Every rank writes its own (identical, atomic)
    # copy: work dirs need not be shared between nodes.
    init_file = osp.join(osp.abspath(cfg.work_dir), 'backbone_init.pth')
    atomic_torch_save({'state_dict': state, 'meta': meta or {}}, init_file)
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=init_file)
    if task == 'seg':
        cfg.model.pretrained = None

    runner = Runner.from_cfg(cfg)
    runner.logger.info(f'backbone OK: {count} tensors, 0 missing, 0 unexpected '
                       f'({args.backbone})')
    runner.register_hook(BackboneProvenanceHook(backbone))
    runner.train()
    metrics = runner.test()
    return write_metrics(runner, task, args.config, metrics, backbone=backbone,
                         checkpoint=runner.message_hub.get_info('last_ckpt'),
                         iterations=runner.iter, seed=runner.seed)


def evaluate(task: str, args) -> dict:
    """Test the fine-tuned ``args.checkpoint`` of ``args.config``, write metrics.json.

    Returns the metrics record (None on ranks other than the first).
    """
    cfg = prepare_config(task, args, ('test_dataloader',))
    try:
        checkpoint = safe_torch_load(args.checkpoint)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from e
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get('state_dict'), dict):
        raise UserError(f"{args.checkpoint}: not a training checkpoint (no 'state_dict')")
    cfg.load_from = args.checkpoint

    setup_launcher(cfg)
    runner = Runner.from_cfg(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    # Runner.load_checkpoint is non-strict too: a checkpoint of another model would be tested.
    check_state_dict(checkpoint['state_dict'], model, args.checkpoint,
                     f'the model of {args.config}')
    # what trained it (the checkpoint's message hub keeps it), and where it is tested now
    trained = (checkpoint.get('message_hub') or {}).get('runtime_info') or {}
    runner.message_hub.update_info('setting', trained.get('setting'))
    runner.message_hub.update_info('env', environment(runner.world_size))
    metrics = runner.test()
    meta = checkpoint.get('meta') or {}
    return write_metrics(runner, task, args.config, metrics, backbone=meta.get('backbone'),
                         checkpoint=args.checkpoint, iterations=meta.get('iter'),
                         seed=meta.get('seed'))


def write_metrics(runner, task: str, config: str, metrics: dict, backbone, checkpoint,
                  iterations, seed):
    """Write ``work_dir/metrics.json``: every metric plus where it comes from (main process)."""
    if not is_main_process():
        return None
    name = TASKS[task][1]
    dataset = runner.test_dataloader.dataset
    record = dict(
        task=task,
        headline=dict(name=name, value=float(metrics[name]) if name in metrics else None),
        metrics={k: float(v) for k, v in metrics.items()},
        config=osp.abspath(config),
        backbone=backbone,
        checkpoint=None if checkpoint is None else dict(
            path=osp.abspath(checkpoint), sha256=file_sha256(checkpoint)),
        iterations=iterations,
        seed=seed,
        world_size=get_world_size(),
        setting=runner.message_hub.get_info('setting'),
        env=runner.message_hub.get_info('env'),
        cost=runner.message_hub.get_info('cost'),
        test_data=dict(data_identity(dataset), data_root=getattr(dataset, 'data_root', None),
                       ann_file=getattr(dataset, 'ann_file', None)),
        test_setting=evaluation_hash(runner.cfg),
        timestamp=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
    )
    path = osp.join(runner.work_dir, 'metrics.json')
    atomic_write_json(record, path)
    runner.logger.info(f'{name} = {record["headline"]["value"]}; wrote {path}')
    return record


def _plain(meta):
    """``meta`` as JSON data (anything exotic as its string)."""
    return None if meta is None else json.loads(json.dumps(meta, default=str))
