"""Deep-stem ResNets (V1c, V1d) as mmdet and mmseg name them, from mmpretrain's names.

mmpretrain builds the 3-conv stem of ``ResNetV1c``/``ResNetV1d`` from ConvModules
(``stem.0.conv.weight``, ``stem.0.bn.*``, ``stem.1.conv.weight``, ...); mmdet's and mmseg's
``ResNet(deep_stem=True)`` use a plain Sequential of conv, norm, ReLU (``stem.0.weight``,
``stem.1.*``, ``stem.3.weight``, ``stem.4.*``, ...). And with ``avg_down`` (V1d) mmdet/mmseg put
an average pool in front of *every* downsample conv, mmpretrain only where the stride is not 1
(``layer1``): there its conv is ``downsample.0``, theirs ``downsample.1``. Loaded non-strictly,
a file in the other naming leaves the stem random with only a warning.
"""
import re
from typing import Dict

import torch

_STEM = re.compile(r'^stem\.(\d+)\.(conv|bn)\.(.+)$')
_DOWNSAMPLE = re.compile(r'^(layer\d+\.\d+\.downsample)\.(\d+)\.(.+)$')


def is_avg_down(state: Dict[str, torch.Tensor]) -> bool:
    """A downsample conv (4-d weight) at index 1 only exists behind an average pool."""
    return any(m and m.group(2) == '1' and m.group(3) == 'weight' and v.dim() == 4
               for m, v in ((_DOWNSAMPLE.match(k), v) for k, v in state.items()))


def to_downstream(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``state`` with mmpretrain's deep-stem (and V1d downsample) keys renamed as mmdet's and
    mmseg's; keys already so named, and plain-ResNet keys, are kept as they are."""
    avg_down = is_avg_down(state)
    out = {}
    for key, value in state.items():
        stem = _STEM.match(key)
        down = _DOWNSAMPLE.match(key)
        if stem:
            index, part, rest = stem.groups()
            key = f'stem.{3 * int(index) + (part == "bn")}.{rest}'
        elif avg_down and down and f'{down.group(1)}.0.weight' in state and state[
                f'{down.group(1)}.0.weight'].dim() == 4:  # mmpretrain's pool-less downsample
            key = f'{down.group(1)}.{int(down.group(2)) + 1}.{down.group(3)}'
        out[key] = value
    return out


def is_deep_stem(state: Dict[str, torch.Tensor]) -> bool:
    return any(k.startswith('stem.') for k in state)
