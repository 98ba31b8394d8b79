"""A pretrained backbone for torchvision, timm or OpenMMLab, proven to compute what ours does.

Our backbone files use mmdet's/mmseg's key names (:mod:`~sd_transfer.stem_keys`). A plain ResNet
is named the same in torchvision and timm (``conv1``, ``bn1``, ``layer1.0.conv1``,
``downsample.0``, ``fc``). Deep stems differ: mmdet's is one Sequential of (conv, BN, ReLU) x 3
(``stem.0``, ``stem.1``, ``stem.3``, ``stem.4``, ``stem.6``, ``stem.7``), timm's (``resnet50c``,
``resnet50d``) is ``conv1`` = conv, BN, ReLU, conv, BN, ReLU, conv with the last BN outside it as
``bn1``. V1d's downsample is named alike in both: an average pool (an Identity where the stride
is 1) in front of every downsample conv, ``downsample.1`` and ``downsample.2``; only
mmpretrain's own ResNetV1d leaves the pool out where the stride is 1. torchvision has no deep
stem.

Nothing is written before the file loads strictly into the target library's model (the head
aside unless it is exported) and that model's features, and logits with the head, equal
mmpretrain's model with the same weights on a random input.
"""
import importlib.util
import os.path as osp

import torch

from .errors import UserError
from .io import atomic_torch_save, atomic_write_bytes, atomic_write_json, file_sha256, \
    safe_torch_load
from .stem_keys import is_avg_down, is_deep_stem, to_downstream
from .transfer.backbone import check_state_dict, read_backbone

FORMATS = ('mmlab', 'torchvision', 'timm')
TOLERANCE = 1e-5  # of the largest output value (at least 1)


def timm_key(key: str) -> str:
    """A key of mmdet's/mmseg's ResNet as timm's ResNet names it."""
    if key.startswith('stem.7.'):
        return 'bn1.' + key[len('stem.7.'):]
    return 'conv1.' + key[len('stem.'):] if key.startswith('stem.') else key


def architecture(state: dict, path: str, meta) -> tuple:
    """``(arch, depth)`` of mmpretrain's backbone that ``state`` (mmdet's names) fits, checked
    key by key and shape by shape against it."""
    from mmpretrain.models import ResNet
    from mmseg.models import backbones
    deep = is_deep_stem(state)
    arch = ('ResNetV1d' if is_avg_down(state) else 'ResNetV1c') if deep else 'ResNet'
    block = 'Bottleneck' if 'layer1.0.conv3.weight' in state else 'BasicBlock'
    blocks = tuple(len({k.split('.')[1] for k in state if k.startswith(f'layer{i}.')})
                   for i in range(1, 5))
    depths = [d for d, (cls, stages) in ResNet.arch_settings.items()
              if (cls.__name__, tuple(stages)) == (block, blocks)]
    if not depths:
        raise UserError(f'{path}: not a ResNet-18/34/50/101/152 ({block}s per stage: '
                        f'{blocks})')
    hint = f" (the file's meta says {meta['arch']})" if meta and meta.get('arch') not in (
        None, arch) else ''
    check_state_dict(state, getattr(backbones, arch)(depth=depths[0]), path,
                     f'a {arch}-{depths[0]}', hint)
    return arch, depths[0]


def classifier_head(path: str) -> dict:
    """``fc.weight`` and ``fc.bias`` of a pretraining checkpoint's ``LinearClsHead``."""
    checkpoint = safe_torch_load(path)
    state = checkpoint.get('state_dict') if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or 'head.fc.weight' not in state:
        raise UserError(f'{path}: no classifier head (head.fc.*) in it: --with-head needs a '
                        'pretraining checkpoint (epoch_N.pth, the run\'s last_checkpoint)')
    return {k: state[f'head.{k}'] for k in ('fc.weight', 'fc.bias')}


class Reference(torch.nn.Module):
    """mmpretrain's backbone (and GAP + LinearClsHead) loaded with a backbone file's weights."""

    def __init__(self, arch: str, depth: int, state: dict, head=None):
        super().__init__()
        from mmpretrain.models import GlobalAveragePooling, LinearClsHead, backbones
        self.backbone = getattr(backbones, arch)(depth=depth, out_indices=(0, 1, 2, 3))
        own = self.backbone.state_dict()
        downstream = dict(zip(own, to_downstream(own)))  # a rename: one key for one key
        # files without num_batches_tracked (older torchvision ones) keep the model's
        self.backbone.load_state_dict({k: state.get(downstream[k], v) for k, v in own.items()})
        self.neck = self.head = None
        if head is not None:
            self.neck = GlobalAveragePooling()
            self.head = LinearClsHead(num_classes=head['fc.weight'].shape[0],
                                      in_channels=head['fc.weight'].shape[1])
            self.head.load_state_dict(head)
        self.eval()

    def downstream_state(self) -> dict:
        """The backbone's weights as mmdet/mmseg name them, and the head's as ``fc.*``."""
        state = to_downstream({k: v.detach().clone() for k, v in
                               self.backbone.state_dict().items()})
        if self.head is not None:
            state.update({k: v.detach().clone() for k, v in self.head.state_dict().items()})
        return state

    def forward(self, x):
        features = list(self.backbone(x))
        return features, self.head(self.neck(tuple(features))) if self.head else None


def target_model(fmt: str, arch: str, depth: int, classes: int):
    """The target library's model, and a function of it returning (features, logits)."""
    if fmt == 'mmlab':
        from mmseg.models import backbones
        model = getattr(backbones, arch)(depth=depth, out_indices=(0, 1, 2, 3))
        return model, lambda x: (list(model(x)), None)
    if fmt == 'torchvision':
        import torchvision
        from torchvision.models.feature_extraction import create_feature_extractor
        model = torchvision.models.get_model(f'resnet{depth}', num_classes=classes or 1000)
        nodes = {f'layer{i}': str(i) for i in range(1, 5)}
        return model, lambda x: (list(create_feature_extractor(model, nodes)(x).values()),
                                 model(x))
    from mmpretrain.models import ResNet
    from timm.models import resnet
    block, layers = ResNet.arch_settings[depth]
    deep = dict(stem_width=32, stem_type='deep', avg_down=arch == 'ResNetV1d') if (
        arch != 'ResNet') else {}
    model = resnet.ResNet(block=getattr(resnet, block.__name__), layers=layers,
                          num_classes=classes or 1000, **deep)
    return model, lambda x: (model.forward_intermediates(x, indices=[1, 2, 3, 4],
                                                         intermediates_only=True), model(x))


def target_name(fmt: str, arch: str, depth: int) -> str:
    """How a user builds the model the file is for."""
    if fmt == 'mmlab':
        return f"mmdet/mmseg {arch}(depth={depth})"
    if fmt == 'torchvision':
        return f'torchvision.models.resnet{depth}'
    import timm
    from mmpretrain.models import ResNet
    name = f"resnet{depth}{dict(ResNet='', ResNetV1c='c', ResNetV1d='d')[arch]}"
    if timm.is_model(name):
        return f'timm {name}'
    block, layers = ResNet.arch_settings[depth]  # timm has no resnet18c / resnet34c
    return (f'timm.models.resnet.ResNet({block.__name__}, {tuple(layers)}, stem_width=32, '
            f"stem_type='deep'{', avg_down=True' if arch == 'ResNetV1d' else ''})")


def verify(state: dict, fmt: str, arch: str, depth: int, reference: Reference,
           path: str) -> dict:
    """Load ``state`` strictly into the target model (its ``fc`` aside without a head) and
    compare its outputs with ``reference``'s; return the largest differences."""
    with_head = reference.head is not None
    classes = state['fc.weight'].shape[0] if with_head else None
    model, outputs = target_model(fmt, arch, depth, classes)
    loaded = model.load_state_dict(state, strict=False)
    missing = [k for k in loaded.missing_keys if with_head or not k.startswith('fc.')]
    if missing or loaded.unexpected_keys:
        raise UserError(f'{path}: the {target_name(fmt, arch, depth)} model does not take the '
                        f'exported weights (missing: {missing[:3]}, unexpected: '
                        f'{loaded.unexpected_keys[:3]}); nothing written')
    model.eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        (ours, our_logits), (theirs, their_logits) = reference(x), outputs(x)
    pairs = [(f'stage {i + 1}', a, b) for i, (a, b) in enumerate(zip(ours, theirs))]
    if with_head:
        pairs.append(('logits', our_logits, their_logits))
    diffs = {}
    for name, a, b in pairs:
        diff = float((a - b).abs().max()) if a.shape == b.shape else float('inf')
        if not diff <= TOLERANCE * max(1.0, float(a.abs().max())):
            raise UserError(f'{path}: the {target_name(fmt, arch, depth)} model computes other '
                            f"{name} {'outputs' if name == 'logits' else 'features'} than "
                            f"mmpretrain's {arch}-{depth} (max |diff| {diff:.3g}); nothing "
                            'written')
        diffs[name] = diff
    return diffs


def _convert(state: dict, fmt: str, arch: str) -> dict:
    if fmt == 'torchvision' and arch != 'ResNet':
        raise UserError(f'--format torchvision: torchvision has no deep-stem ResNet ({arch}); '
                        'use --format timm (its resnet*c / resnet*d)')
    return {timm_key(k): v for k, v in state.items()} if fmt == 'timm' else dict(state)


def _check_request(path: str, fmt: str, out: str, with_head: bool) -> None:
    """What can be refused before any weights are read."""
    if fmt == 'mmlab' and with_head:
        raise UserError('--with-head: mmdet and mmseg take no classifier head, so mmlab files '
                        'have none (the pretraining checkpoint itself is mmpretrain\'s)')
    if fmt == 'timm' and not _installed('timm'):
        raise UserError('--format timm: the export loads the file into timm\'s model before '
                        'writing it, which needs the timm package (pip install timm)')
    if not out.endswith(('.pth', '.safetensors')):
        raise UserError(f'--out {out}: expected a .pth or .safetensors file name')
    if out.endswith('.safetensors') and not _installed('safetensors'):
        raise UserError(f'--out {out}: writing safetensors needs the safetensors package '
                        '(pip install safetensors); or write a .pth')
    if osp.exists(path) and osp.exists(out) and osp.samefile(path, out):
        raise UserError(f'--out {out} is the input file')


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def export_backbone(path: str, fmt: str, out: str, with_head: bool = False) -> dict:
    """Write ``path``'s backbone (and, ``with_head``, its classifier head) for ``fmt`` to
    ``out``, verified first, and its meta to ``out + '.json'``; return that meta."""
    _check_request(path, fmt, out, with_head)
    state, meta = read_backbone(path)
    arch, depth = architecture(state, path, meta)
    head = classifier_head(path) if with_head else None
    reference = Reference(arch, depth, state, head)
    exported = _convert(reference.downstream_state(), fmt, arch)
    diffs = verify(exported, fmt, arch, depth, reference, out)
    info = dict(format=fmt, model=target_name(fmt, arch, depth), arch=arch, depth=depth,
                classes=head['fc.weight'].shape[0] if head else None,
                source=dict(path=osp.abspath(path), sha256=file_sha256(path)),
                max_abs_diff=diffs, meta=meta)
    if out.endswith('.safetensors'):
        from safetensors.torch import save
        atomic_write_bytes(save({k: v.contiguous() for k, v in exported.items()},
                                metadata=dict(format='pt')), out)
    elif fmt == 'mmlab':  # as backbone.pth: what tools/transfer.py --backbone reads with meta
        atomic_torch_save(dict(state_dict=exported, meta=dict(
            meta or {}, arch=arch, depth=depth, keys='mmdet/mmseg')), out)
    else:  # what model.load_state_dict(torch.load(out)) takes
        atomic_torch_save(exported, out)
    atomic_write_json(info, out + '.json')
    return info

