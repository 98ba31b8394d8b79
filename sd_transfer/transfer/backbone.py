"""Read a pretrained backbone file and prove it fits the backbone a config builds.

mmengine's ``PretrainedInit`` loads non-strictly: a file that does not fit only logs a warning and
fine-tuning goes on from (partly) random weights. So we normalise the file to a plain backbone
state dict and compare it, key by key and shape by shape, with the config's backbone before any
training starts.
"""
import copy

import torch
from mmengine.registry import DefaultScope

from ..errors import UserError
from ..io import safe_torch_load
from ..stem_keys import to_downstream

# Of a classifier checkpoint's meta, what says where the weights come from (not its config text,
# environment dump or dataset classes).
_CHECKPOINT_META_KEYS = ('experiment_name', 'epoch', 'iter', 'seed', 'time')


def read_backbone(path: str):
    """Return ``(state_dict, meta)`` with keys as mmdet's / mmseg's ``ResNet`` name them.

    Accepts our exported ``backbone.pth`` (``state_dict`` + ``meta``), an mmengine / mmpretrain
    classifier checkpoint (``backbone.*`` kept and stripped; head, teacher and the rest dropped;
    a ResNetV1c/V1d stem renamed), OpenMMLab's ImageNet backbones that mmdet's and mmseg's
    recipes start from (``open-mmlab://resnet50_v1c`` and the like) and a torchvision ResNet
    state dict (``fc.*`` dropped). ``meta`` is None when the file has none.
    """
    try:
        obj = safe_torch_load(path)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from e
    if isinstance(obj, dict) and isinstance(obj.get('state_dict'), dict):
        state, meta = obj['state_dict'], obj.get('meta')
    else:
        state, meta = obj, None
    if not isinstance(state, dict) or not state or not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f'{path}: not a backbone checkpoint (expected a state dict of tensors, '
                        "or a dict with one under 'state_dict')")
    if any(k.startswith('backbone.') for k in state):
        state = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
        if isinstance(meta, dict):
            meta = {k: meta[k] for k in _CHECKPOINT_META_KEYS if k in meta}
    else:
        state = {k: v for k, v in state.items() if not k.startswith('fc.')}
    # an mmpretrain deep-stem classifier names its stem differently (OpenMMLab's
    # open-mmlab://resnet50_v1c and our exports already use mmdet's/mmseg's names)
    return to_downstream(state), meta if isinstance(meta, dict) else None


def build_backbone(backbone_cfg: dict, task: str) -> torch.nn.Module:
    """The config's backbone with random weights, built from mmdet's or mmseg's registry."""
    if task == 'det':
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
    else:
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = copy.deepcopy(backbone_cfg)
    cfg.pop('init_cfg', None)
    cfg.pop('pretrained', None)
    # mmengine's Registry.build looks the type up in the *current* default scope's registry; a
    # scope left by an earlier Runner in this process (e.g. 'mmengine') would hide mmdet's ResNet
    with DefaultScope.overwrite_default_scope(MODELS.scope):
        return MODELS.build(cfg)


def check_state_dict(state: dict, model: torch.nn.Module, path: str, what: str,
                     hint: str = '') -> None:
    """Raise :class:`UserError` unless ``state`` has exactly ``model``'s keys and shapes."""
    expected = model.state_dict()
    # BatchNorm fills a missing ``num_batches_tracked`` itself; older torchvision files lack it.
    missing = [k for k in expected
               if k not in state and not k.endswith('.num_batches_tracked')]
    unexpected = [k for k in state if k not in expected]
    mismatched = [f'{k} {list(state[k].shape)} in the file, {list(v.shape)} in the model'
                  for k, v in expected.items() if k in state and state[k].shape != v.shape]
    problems = [f'{len(keys)} {kind} (first: {", ".join(keys[:3])})'
                for kind, keys in (('missing keys', missing), ('unexpected keys', unexpected),
                                   ('shape mismatches', mismatched)) if keys]
    if problems:
        raise UserError(f'{path} does not fit {what}{hint}: ' + '; '.join(problems))


def verify_backbone(state: dict, meta, backbone_cfg: dict, task: str, path: str) -> int:
    """Check ``state`` against the config's backbone; return the number of tensors."""
    arch = f"{backbone_cfg['type']}, depth {backbone_cfg.get('depth')}"
    hint = ''
    if meta and meta.get('depth') not in (None, backbone_cfg.get('depth')):
        hint = f" (the file's meta says depth {meta['depth']})"
    elif meta and meta.get('arch') not in (None, backbone_cfg['type']):
        hint = f" (the file's meta says {meta['arch']})"
    check_state_dict(state, build_backbone(backbone_cfg, task), path,
                     f"the config's backbone ({arch})", hint)
    return len(state)
